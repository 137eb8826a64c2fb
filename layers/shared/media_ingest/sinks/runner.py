"""One SQS batch of the sink queue (FIFO, a message group per dataset): each message's
changes applied in order; a message that fails is retried, and the later messages of its
group wait for it (Powertools' FIFO processor reports them failed too), so changes of one
dataset are never applied out of order or concurrently. Other groups go on.

On a message's last attempt (`max_receive_count`, the queue's redrive policy) its changes
become SINK_UNAVAILABLE failure records before it goes to the dead-letter queue: nothing
is lost without a record, and `media-ingest redrive --sink` sends it again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from media_ingest.errors import IngestError
from media_ingest.observability import logger, metrics
from media_ingest.sinks.changes import ChangeBatch
from media_ingest.sinks.label_studio import LabelStudioSink

# SinkResult field -> metric name
_METRICS = {
    "created": "SinkTasksCreated",
    "updated": "SinkTasksUpdated",
    "deleted": "SinkTasksDeleted",
    "flagged": "SinkTasksFlagged",
    "skipped": "SinkSkipped",
    "refused": "SinkRefused",
}


@dataclass
class SinkRunner:
    sink: LabelStudioSink
    max_receive_count: int

    def run(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # Report every failed message, even when all of them failed (BatchProcessor's own
        # option; this subclass's constructor does not take it). Raising would fail the
        # invocation and retry messages that succeeded.
        processor.raise_on_entire_batch_failure = False
        return dict(
            process_partial_response(
                event=event, record_handler=self._record, processor=processor, context=context
            )
        )

    def _record(self, record: SQSRecord) -> None:
        attempt = int(record.attributes.approximate_receive_count or 1)
        batch = ChangeBatch.model_validate_json(record.body)
        try:
            result = self.sink.apply(batch, attempt)
        except Exception as error:
            logger.exception("sink message failed", extra={"attempt": attempt})
            if attempt >= self.max_receive_count:
                reason = error.message if isinstance(error, IngestError) else type(error).__name__
                self.sink.give_up(batch, f"gave up after {attempt} attempts: {reason}", attempt)
            raise
        for name, value in asdict(result).items():
            if name in _METRICS and value:
                metrics.add_metric(name=_METRICS[name], unit=MetricUnit.Count, value=value)
