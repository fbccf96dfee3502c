"""One typed settings object for every part of clarify.

Precedence: CLI flags > environment (``CLARIFY_*``) > defaults. Every component
takes a ``Settings`` instead of reading the environment itself, so a test or a
remote deployment can build one explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["auto", "transformers", "vllm"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARIFY_", extra="ignore")

    # Storage
    data_dir: Path = Field(Path(".clarify"), description="Folder for the DuckDB file, models and adapters.")
    db_path: Path | None = Field(None, description="DuckDB file; default <data_dir>/clarify.duckdb.")

    # Model and engine
    model: str | None = Field(None, description="Local Hugging Face model folder; default: the bundled SmolLM2-135M-Instruct.")
    engine: EngineName = Field("auto", description="auto: vLLM when its environment (.venv-vllm) exists or vllm_url is set, else the in-process transformers engine.")
    vllm_url: str | None = Field(None, description="Use an already running vLLM OpenAI server instead of starting one.")
    threads: int = Field(1, ge=1, description="torch intra-op threads (engine, trainer). 1 is fastest on a busy 2-core box; raise it on a quiet many-core one.")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="Weights dtype of the in-process engine (fp32 batches faster on CPUs without bf16 units).")
    max_new_tokens: int = Field(96, ge=1, le=2048, description="Cap on the tokens of each agent reply.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy.")

    # Conversation policy
    max_clarifying_questions: int = Field(1, ge=0, le=5, description="Horizon: questions before the agent must answer.")
    question_cost: float = Field(0.1, ge=0.0, le=1.0, description="Reward lost per clarifying question asked.")
    explore: float = Field(0.1, ge=0.0, le=0.5, description="Exploration: on a reply that may ask a clarifying question, the served model takes the other action (asks when its decision would answer, answers when it would ask) with this probability, and the log records each turn's P(ask), action, propensity and whether it explored, so the learner sees both actions. 0 = off (the decision alone). 0.1: a user meets one off-policy reply in 10 that may ask, costing at most a needless question (0.1 reward) or a guess, and the learner gets both actions on about 10% of contexts, enough for per-action means after a few hundred conversations.")
    max_message_chars: int = Field(4000, ge=1, description="Longer user messages are refused with a clear error.")
    max_context_chars: int = Field(8000, ge=1, description="Longer reference notes are refused.")

    # Server
    host: str = Field("127.0.0.1", description="Interface the UI and API bind to; a non-loopback host is refused without auth.")
    port: int = Field(7860, ge=0, le=65535, description="Port of the UI and the API.")
    auth: str | None = Field(None, description="Comma-separated user:password pairs allowed to chat and rate.")
    admin_auth: str | None = Field(None, description="Comma-separated admin:password pairs allowed to train and promote.")
    api_keys: str | None = Field(None, description="Bearer keys of the OpenAI-compatible API (/v1), comma-separated `name:key` or bare keys, one per client; the name is recorded on the client's conversations. None: the API answers on a loopback host only.")

    # Learner
    seed: int = Field(0, description="Training seed (the k-th continuation of an adapter trains with seed + k) and the seed of simulation, evaluation and the gate.")
    refine_epochs: float = Field(2.0, gt=0.0, description="Epochs of a refine run (continue an adapter: the Training tab's Refine, each round of refine_rounds).")
    refine_learning_rate: float = Field(2e-4, gt=0.0, description="Learning rate of a refine run (half the default training rate).")
    refine_rounds: int = Field(0, ge=0, le=20, description="After a run from scratch (`clarify train`, UI or scheduled), continue it this many times in a chain, refine_epochs at refine_learning_rate each, a new seed each round (learner/rounds.py). Each round is a registered candidate. 0 = a single run.")
    refine_average_last: int = Field(2, ge=0, le=20, description="With at least this many refinement rounds, the chain's result is the weight average of its last this many rounds (learner/average.py), calibrated; 0 or 1: the last round. An average of the last rounds steadies the ask decision, which swings from round to round (docs/LEARNING.md).")
    train_max_steps: int | None = Field(None, ge=1, description="Cap on steps of runs started from the UI or the scheduler (smoke runs, tests); None = full run. The Training tab can change it per run.")

    # Scheduler: the serving process starts a training run by itself (both triggers off by default)
    schedule_min_new_rated: int = Field(0, ge=0, description="Train when at least this many conversations were rated since the last run started. 0 = off.")
    schedule_every_hours: float = Field(0.0, ge=0.0, description="Train every this many hours (when something new was rated since the last run). 0 = off.")
    schedule_method: Literal["swift", "refit", "sft", "dpo", "kto"] = Field("swift", description="Method of scheduled runs.")
    schedule_source: Literal["ui", "api", "simulated"] | None = Field(None, description="Only count and train on this source; None = all.")
    schedule_poll_seconds: float = Field(60.0, gt=0.0, description="How often the scheduler checks its triggers.")

    # Promotion gate: candidate vs the active adapter (or base) on the first gate_items dev items
    gate_after_training: bool = Field(True, description="Run the promotion gate after each UI or scheduled training run.")
    gate_items: int = Field(48, ge=1, description="Dev benchmark items the gate evaluates (the first N of agent/data/dev.jsonl).")
    promotion_margin: float = Field(0.02, ge=0.0, le=1.0, description="Promote when candidate mean reward >= active mean reward - margin.")
    auto_promote: bool = Field(True, description="Make a candidate active when it passes the gate (else the decision is only recorded).")

    # A/B split of new conversations between the active adapter (arm A) and a candidate (arm B)
    ab_candidate: str | None = Field(None, description="Adapter id served to arm B; None = no experiment. Admins change it in the Adapters tab.")
    ab_share: float = Field(0.0, ge=0.0, le=1.0, description="Share of new conversations assigned to arm B.")

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "clarify.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    def with_overrides(self, **overrides) -> "Settings":
        """Apply CLI flags that were actually given (None means 'not given')."""
        given = {k: v for k, v in overrides.items() if v is not None}
        # Re-validate (model_copy would not): `--port 99999` must fail like CLARIFY_PORT=99999 does.
        return type(self)(**{**self.model_dump(), **given}) if given else self
