"""Judging: the one judge loop every stage calls (judging), `judgeforge score` in one
process or on Ray replicas (ray), and how sure a verdict is (confidence)."""
