"""agent/adapter_metadata.py: the one reader and writer of clarify_adapter.json."""

from __future__ import annotations

import json

import pytest

from agent.adapter_metadata import METADATA_FILE, AdapterMetadata, read_metadata, write_metadata
from agent.engine import AdapterLoadError


def test_what_is_written_reads_back_and_empty_fields_stay_out_of_the_file(tmp_path):
    meta = AdapterMetadata(method="swift", config={"epochs": 3.0}, snapshot="s.parquet", n_conversations=12,
                           metrics={"train_loss": 0.5}, ask_threshold=0.3,
                           calibration={"n_questions": 12})
    write_metadata(tmp_path, meta)
    assert read_metadata(tmp_path) == meta
    write_metadata(tmp_path, AdapterMetadata(method="average", members=["/a", "/b"], combination="svd"))
    assert json.loads((tmp_path / METADATA_FILE).read_text()) == {
        "method": "average", "members": ["/a", "/b"], "combination": "svd"}  # uncalibrated: no ask_threshold
    assert [p.name for p in tmp_path.iterdir()] == [METADATA_FILE]  # the temporary file was renamed into place


def test_no_file_reads_as_empty_and_unknown_keys_are_ignored(tmp_path):
    assert read_metadata(tmp_path) == AdapterMetadata()
    (tmp_path / METADATA_FILE).write_text(json.dumps(
        {"method": "swift", "ask_threshold": None, "ask_renamed_views": 4, "calibration_share": 0.15,
         "ask_views": 3}))
    assert read_metadata(tmp_path) == AdapterMetadata(method="swift")


@pytest.mark.parametrize("content, message", [
    ('{"config": [1]}', "config must be a JSON object"),
    ('{"members": "/a"}', "members must be a list of adapter folders"),
    ('{"n_conversations": 2.5}', "n_conversations must be a whole number"),
    ("[1, 2]", "not valid JSON metadata"),
])
def test_a_known_key_of_the_wrong_type_is_a_clear_adapter_error(tmp_path, content, message):
    (tmp_path / METADATA_FILE).write_text(content)
    with pytest.raises(AdapterLoadError, match=message):
        read_metadata(tmp_path)
