"""`media-ingest`: the operator's view of a deployed stack (on AWS, or LocalStack), and the
local commands that need no stack (annotation QA). Operator tooling: never in the Lambda
layer.

parser.py is the command line's schema, commands.py the commands, render.py their text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from media_ingest.errors import AnnotationError
from media_ingest.ops.cli.commands import LOCAL_COMMANDS, STACK_COMMANDS
from media_ingest.ops.cli.parser import parser
from media_ingest.ops.stack import StackNotFound, stack_outputs

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in LOCAL_COMMANDS:
        return _run(args.command, lambda: LOCAL_COMMANDS[args.command][0](args))
    try:
        outputs = stack_outputs(args.stack)
    except StackNotFound as exc:
        print(f"media-ingest: {exc}", file=sys.stderr)
        return 2
    except (NoRegionError, NoCredentialsError) as exc:
        print(
            f"media-ingest: {exc} Set AWS_REGION and credentials for AWS, or "
            "`source infra/localenv.sh` for the local LocalStack.",
            file=sys.stderr,
        )
        return 2
    return _run(args.command, lambda: STACK_COMMANDS[args.command][0](outputs, args))


def _run(name: str, command: Callable[[], str]) -> int:
    try:
        text = command()
    except KeyboardInterrupt:
        return 130
    except (ValueError, LookupError) as exc:  # bad option values, a missing output
        print(f"media-ingest {name}: {exc}", file=sys.stderr)
        return 2
    except AnnotationError as exc:  # an invalid CSV: the message names file, line, column
        print(f"media-ingest {name}: {exc.code.value}: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"media-ingest {name}: AWS refused: {exc}", file=sys.stderr)
        return 1
    if text:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
