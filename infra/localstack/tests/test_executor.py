"""The executor's own bookkeeping, without a running LocalStack."""

from types import SimpleNamespace
from typing import Any

from ls_process_executor import executor


def _version(*layers: tuple[str, str]) -> Any:
    return SimpleNamespace(
        config=SimpleNamespace(
            layers=[
                SimpleNamespace(layer_version_arn=arn, code=SimpleNamespace(code_sha256=sha))
                for arn, sha in layers
            ]
        )
    )


def test_a_republished_layer_with_a_reused_arn_gets_a_fresh_merged_opt() -> None:
    # A LocalStack started afresh numbers the first version of every layer ":1" again: a
    # merged /opt kept from an earlier run must not be taken for the new code.
    arn = "arn:aws:lambda:us-east-1:000000000000:layer:shared:1"
    before = executor._layer_ids(_version((arn, "aaaa")))
    after = executor._layer_ids(_version((arn, "bbbb")))
    assert before != after
    assert executor._layer_ids(_version((arn, "aaaa"))) == before
