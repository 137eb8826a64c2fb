"""The group table adapter's join under contention, its request shapes checked by botocore's
Stubber: a cancelled transaction whose conditions both held is a conflict, tried again at
once, not a message retry that would wait out the queue's visibility timeout."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from media_ingest.adapters.groups import JOIN_ATTEMPTS, META, DynamoGroupStore, member_sk
from media_ingest.errors import TransientError
from media_ingest.groups.rules import GroupKind, GroupRef, Joined
from tests.support.items import image_item

REF = GroupRef(dataset="main", kind=GroupKind.IMAGE_SEQUENCES, scope="seq/r", title="r")
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def store() -> tuple[DynamoGroupStore, Stubber, list[float]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    slept: list[float] = []
    return DynamoGroupStore("groups", client, sleep=slept.append), Stubber(client), slept


def cancelled(stub: Stubber) -> None:
    stub.add_client_error("transact_write_items", service_error_code="TransactionCanceledException")


def nothing_there(stub: Stubber, item_url: str) -> None:
    """The reads after a cancellation: no such member yet, the group still open."""
    stub.add_response(
        "get_item",
        {},
        {
            "TableName": "groups",
            "Key": {"pk": {"S": REF.pk}, "sk": {"S": member_sk(item_url)}},
            "ConsistentRead": True,
        },
    )
    stub.add_response(
        "get_item",
        {
            "Item": {
                "pk": {"S": REF.pk},
                "sk": {"S": META},
                "ref": {"S": REF.model_dump_json()},
                "status": {"S": "open"},
                "members": {"N": "3"},
            }
        },
        {
            "TableName": "groups",
            "Key": {"pk": {"S": REF.pk}, "sk": {"S": META}},
            "ConsistentRead": True,
        },
    )


def test_a_conflicting_join_is_tried_again_at_once_and_joins() -> None:
    groups, stub, slept = store()
    item = image_item("seq/r/f1.png")
    cancelled(stub)
    nothing_there(stub, item.object_url)
    stub.add_response("transact_write_items", {}, {"TransactItems": ANY})
    with stub:
        assert groups.join(REF, item, NOW, NOW) is Joined.ADDED
    stub.assert_no_pending_responses()
    assert len(slept) == 1


def test_a_join_that_keeps_conflicting_is_a_transient_error() -> None:
    groups, stub, slept = store()
    item = image_item("seq/r/f1.png")
    for _ in range(JOIN_ATTEMPTS):
        cancelled(stub)
        nothing_there(stub, item.object_url)
    with stub, pytest.raises(TransientError, match="kept conflicting"):
        groups.join(REF, item, NOW, NOW)
    assert len(slept) == JOIN_ATTEMPTS


def test_a_cancelled_join_of_a_member_already_there_is_present_without_a_retry() -> None:
    groups, stub, slept = store()
    item = image_item("seq/r/f1.png")
    cancelled(stub)
    stub.add_response(
        "get_item",
        {"Item": {"pk": {"S": REF.pk}, "sk": {"S": member_sk(item.object_url)}}},
        {
            "TableName": "groups",
            "Key": {"pk": {"S": REF.pk}, "sk": {"S": member_sk(item.object_url)}},
            "ConsistentRead": True,
        },
    )
    with stub:
        assert groups.join(REF, item, NOW, NOW) is Joined.PRESENT
    assert slept == []
