"""Paying for the hard items only: calibrate a confidence threshold against gold labels, then
let the local judge decide above it and escalate the rest to the teacher (cascade)."""
