"""The training campaign: every session's idle CPU time becomes better weights.

    python -m restore.training.campaign run --minutes 60 --threads 1
    python -m restore.training.campaign status
    python -m restore.training.campaign release cae-a0483

A queue of models (``jobs.JOBS``) shares the time by priority. Each model
resumes from its state in ``models/<card>/campaign/`` (or, the first time,
from its shipped weights, counting the steps and CPU time already behind
them), trains at a constant learning rate with a weight average, is saved
atomically every few minutes and on SIGTERM/SIGINT, and is validated on
BSDS500 val minus the CBSD68 scenes. ``release`` ships the weight average
only when it beats the shipped weights on that validation.
"""
