# Sourced by the scripts that talk to the local LocalStack: every AWS client (boto3, the
# aws CLI, media-ingest) then reaches it instead of AWS. LOCALSTACK_PORT (default 4566) picks
# the instance, as infra/localstack/harness.sh does.
export AWS_ENDPOINT_URL=http://127.0.0.1:${LOCALSTACK_PORT:-4566}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export MEDIA_INGEST_STACK=${MEDIA_INGEST_STACK:-media-ingest}
