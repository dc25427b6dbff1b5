"""Training on published actforge datasets with TRL: ACT critic GRPO, action GRPO and SFT baselines.

Thin on purpose: TRL's trainers, configs and parser do the work; this package only builds datasets
from a published OUT folder, supplies reward functions and picks defaults for small machines.
"""
