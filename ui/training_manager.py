"""The training job service lives in learner/training_service.py; this name only hands it on until every caller
imports it from there."""

from learner.training_service import JobRefused, JobStatus, TrainingManager  # noqa: F401
