#!/usr/bin/env bash
# Builds the layers and deploys template.yaml as one CloudFormation stack, then prints its
# outputs. Against LocalStack when AWS_ENDPOINT_URL is set (make deploy-local sets it),
# else against the AWS account of the current credentials.
#   infra/deploy.sh [STACK_NAME] [ParameterKey=Value ...]
# The stack name must be lowercase: it is part of the drop bucket's name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stack=${1:-${MEDIA_INGEST_STACK:-media-ingest}}
shift || true
aws=("$root/.venv/bin/aws")
say() { printf '\033[1m[deploy]\033[0m %s\n' "$*"; }

[[ "$stack" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || { echo "deploy: stack name must be lowercase letters, digits, '-' (<= 31)" >&2; exit 2; }

# A caller that deploys several stacks at once (the parallel integration tests) builds the
# layers once beforehand and says so: concurrent rebuilds would overwrite each other.
if [ "${MEDIA_INGEST_LAYERS_BUILT:-}" != 1 ]; then
  bash infra/build.sh >/dev/null
  say "layers built"
fi
work="build/deploy/$stack"
mkdir -p "$work"
account=$("${aws[@]}" sts get-caller-identity --query Account --output text)
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
artifacts="${stack}-artifacts-${account}-${region}"
if ! "${aws[@]}" s3api head-bucket --bucket "$artifacts" >/dev/null 2>&1; then
  say "creating artifact bucket $artifacts"
  if [ "$region" = us-east-1 ]; then
    "${aws[@]}" s3api create-bucket --bucket "$artifacts" >/dev/null
  else
    "${aws[@]}" s3api create-bucket --bucket "$artifacts" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
fi
# SourceBuckets needs parameters CloudFormation cannot compute (a pattern and ARN lists per
# bucket and prefix): derived here, by the package's one rule (media_ingest/sources.py).
# ReconcileInventories likewise (the reconcile role's ARN lists).
sources="" accounts="" inventories=""
for kv in "$@"; do
  case "$kv" in
    SourceBuckets=*) sources=${kv#SourceBuckets=} ;;
    SourceAccounts=*) accounts=${kv#SourceAccounts=} ;;
    ReconcileInventories=*) inventories=${kv#ReconcileInventories=} ;;
  esac
done
derived=()
if [ -n "$sources$inventories" ]; then
  lines=$(PYTHONPATH="$root/layers/shared" "$root/.venv/bin/python" -m media_ingest.sources \
    "$sources" "$accounts" "$inventories") || exit 2
  [ -z "$lines" ] || mapfile -t derived <<<"$lines"
fi
say "packaging template.yaml"
if ! "${aws[@]}" cloudformation package --template-file template.yaml --s3-bucket "$artifacts" \
  --s3-prefix "$stack" --output-template-file "$work/packaged.yaml" >"$work/package.log" 2>&1; then
  cat "$work/package.log" >&2; exit 1
fi
say "deploying stack $stack to ${AWS_ENDPOINT_URL:-AWS ($region)}"
# --s3-bucket: CloudFormation takes templates over 51,200 bytes only from S3 (ours is).
"${aws[@]}" cloudformation deploy --template-file "$work/packaged.yaml" --stack-name "$stack" \
  --s3-bucket "$artifacts" --s3-prefix "$stack" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
  ${1:+--parameter-overrides "$@" "${derived[@]}"}
"${aws[@]}" cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table
