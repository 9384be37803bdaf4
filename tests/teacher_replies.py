"""A judgelm teacher's raw replies by kind, per answer order (as the teacher saw the answers), for
the tests of the stages that read distill's verdicts (filter, export); the "right" answer is answer1."""

REPLIES = {
    "fair": {"ab": "8 3\nAssistant 1 is right.", "ba": "3 8\nAssistant 2 is right."},
    "tie": {"ab": "6 6\nBoth are fine.", "ba": "6 6\nBoth are fine."},
    "biased": {"ab": "9 2\nThe first one.", "ba": "9 2\nThe first one."},
    "mumble": {"ab": "8 3\nAssistant 1 is right.", "ba": "Hard to say."},
}
# consistent, but for the wrong answer
FLIPPED = {"ab": "2 9\nAssistant 2 is right.", "ba": "9 2\nAssistant 1 is right."}
