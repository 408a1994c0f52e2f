"""Training: the `SSPNet` model, its learning-rate schedule, callbacks, strategies and trainer."""

from ssp_keras.training.model import SSPNet, build_optimizers, build_sspnet
from ssp_keras.training.optimizers import FusedAdam
from ssp_keras.training.schedule import WarmupHalvingSchedule, schedule_from_config

__all__ = ["FusedAdam", "SSPNet", "WarmupHalvingSchedule", "build_optimizers", "build_sspnet", "schedule_from_config"]
