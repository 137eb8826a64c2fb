"""What IAM allows the extract function, read from template.yaml (LocalStack does not
enforce IAM, so no running stack can show it): it writes an archive's members only under
that archive's own prefix, through a role it assumes per archive with a session policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from media_ingest.archives.rules import member_write_policy, prefix_of

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None
    found: dict[str, Any] = template["Resources"]
    return found


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement, dict) and "Effect" in statement
    ]


def _actions(statement: dict[str, Any]) -> set[str]:
    actions = statement["Action"]
    return {actions} if isinstance(actions, str) else set(actions)


def test_the_extract_role_itself_cannot_write_to_the_drop_bucket(
    resources: dict[str, Any],
) -> None:
    for statement in _statements(resources["ExtractFunctionRole"]):
        writes = {a for a in _actions(statement) if a.startswith("s3:") and "Put" in a}
        if writes:
            assert "DropBucket" not in json.dumps(statement["Resource"]), statement


def test_only_the_extract_role_may_assume_the_member_writer(resources: dict[str, Any]) -> None:
    writer = resources["MemberWriterRole"]["Properties"]
    [trust] = writer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["ExtractFunctionRole", "Arn"]}}
    assert trust["Action"] == "sts:AssumeRole"
    assume = resources["ExtractFunctionAssumesMemberWriter"]["Properties"]
    assert assume["Roles"] == [{"Ref": "ExtractFunctionRole"}]
    [statement] = assume["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": ["MemberWriterRole", "Arn"]}
    function = resources["ExtractFunction"]["Properties"]
    assert function["Environment"]["Variables"]["MEMBER_WRITER_ROLE_ARN"] == {
        "Fn::GetAtt": ["MemberWriterRole", "Arn"]
    }


def test_the_writer_role_writes_the_drop_bucket_only(resources: dict[str, Any]) -> None:
    statements = _statements(resources["MemberWriterRole"])
    for statement in statements:
        assert "DropBucket" in json.dumps(statement["Resource"])
    assert {a for s in statements for a in _actions(s)} == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListBucket",
    }


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("dives/2026-11-23.zip", "arn:aws:s3:::drop/dives/2026-11-23/*"),
        ("a*b?.tar.gz", "arn:aws:s3:::drop/a${*}b${?}/*"),
        ("cost$1.zip", "arn:aws:s3:::drop/cost${$}1/*"),
    ],
)
def test_each_archive_may_write_under_its_own_prefix_and_nowhere_else(
    key: str, resource: str
) -> None:
    policy = json.loads(member_write_policy("arn:aws:s3:::drop", prefix_of(key)))
    writes, listing = policy["Statement"]
    assert writes["Resource"] == resource
    assert set(writes["Action"]) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"}
    assert listing == {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::drop",
    }
