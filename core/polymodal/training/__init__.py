"""Training: the step protocol, the one Trainer, and a run's directory, files and events."""

from polymodal.training.run import (
    event_hook,
    fit_events,
    fit_steps,
    training_directory,
    write_run_files,
)
from polymodal.training.schedule import decay_groups, lr_lambda, seed_everything
from polymodal.training.steps import ModuleSteps, SpecModelSteps, Trainable
from polymodal.training.trainer import Trainer, TrainResult

__all__ = ["ModuleSteps", "SpecModelSteps", "TrainResult", "Trainable", "Trainer",
           "decay_groups", "event_hook", "fit_events", "fit_steps", "lr_lambda", "seed_everything",
           "training_directory", "write_run_files"]
