"""The judge as a reward: `JudgeReward` / `AsyncJudgeReward` for TRL's GRPOTrainer, and the plan
(calls -> rewards) that the server's OpenRLHF route `/get_reward` shares with them."""

from judge.reward.function import AsyncJudgeReward, JudgeReward
from judge.reward.plan import KINDS

__all__ = ["AsyncJudgeReward", "JudgeReward", "KINDS"]
