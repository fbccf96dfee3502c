"""The metadata file beside each adapter's weights (``clarify_adapter.json``): one typed record, read and
written here only.

The learner writes it when it trains, averages or calibrates an adapter (learner/train_adapter.py,
learner/average.py, learner/calibration.py); both engines read the calibrated ask decision from it when they
load the adapter (agent/decision.py). Every field is optional: an adapter copied in by hand may have no file,
an average has members instead of a snapshot, and an adapter with too few questions to calibrate on has no
threshold. Keys this version does not know (options since removed) are ignored when the file is read and
dropped when it is written again; a known key of the wrong type is an AdapterLoadError naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .engine import AdapterLoadError

METADATA_FILE = "clarify_adapter.json"


@dataclass(frozen=True)
class AdapterMetadata:
    """What clarify records about an adapter."""
    method: str | None = None                           # swift, refit, ..., or average
    config: dict = field(default_factory=dict)          # the training settings as saved (TrainConfig.from_dict)
    snapshot: str | None = None                         # the Parquet snapshot it learned from
    n_conversations: int | None = None                  # the rated conversations in that snapshot
    metrics: dict = field(default_factory=dict)         # what training measured
    members: list[str] = field(default_factory=list)    # an average's member folders
    combination: str | None = None                      # an average's: svd | cat
    ask_threshold: float | None = None                  # the calibrated ask decision (None: greedy decides)
    calibration: dict = field(default_factory=dict)     # how the threshold was set (learner/calibration.py)
    calibrated_on: str | None = None                    # the snapshot a later calibration used

    def to_json(self) -> dict:
        """The file's content: the fields that hold something (an uncalibrated adapter has no ask_threshold)."""
        return {name: value for name, value in asdict(self).items() if value not in (None, {}, [])}


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TEXT = (lambda v: isinstance(v, str), "text")
_OBJECT = (lambda v: isinstance(v, dict), "a JSON object")
# What each field must hold in the file; a null reads as the field's default.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "method": _TEXT, "config": _OBJECT, "snapshot": _TEXT, "n_conversations": (_whole, "a whole number"),
    "metrics": _OBJECT,
    "members": (lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v), "a list of adapter folders"),
    "combination": _TEXT,
    "ask_threshold": (lambda v: _number(v) and 0.0 < v < 1.0, "a probability between 0 and 1"),
    "calibration": _OBJECT, "calibrated_on": _TEXT,
}
assert set(_RULES) == {f.name for f in fields(AdapterMetadata)}


def read_metadata(folder: Path) -> AdapterMetadata:
    """The metadata of the adapter in `folder`; empty when it has no file. AdapterLoadError for a broken file."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return AdapterMetadata()
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON object was expected, not {type(raw).__name__}")
    except (OSError, ValueError) as exc:
        raise AdapterLoadError(f"{path} is not valid JSON metadata: {exc}") from exc
    values = {name: raw[name] for name in _RULES if raw.get(name) is not None}
    for name, value in values.items():
        check, what = _RULES[name]
        if not check(value):
            raise AdapterLoadError(f"{path}: {name} must be {what}, not {value!r}.")
    return AdapterMetadata(**values)


def write_metadata(folder: Path, meta: AdapterMetadata) -> None:
    """Write (or replace) the adapter's metadata atomically: a reader sees the old file or the new one."""
    path = Path(folder) / METADATA_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(meta.to_json(), indent=2))
    os.replace(tmp, path)
