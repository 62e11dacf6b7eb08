#!/usr/bin/env bash
# deploy.sh - build the Lambda zips and deploy Omni's stack for a stage.
#
#   deployment/scripts/deploy.sh [--dry-run] [--skip-build] staging|prod
#
# Stages (deployment/template.yaml, StageConfig): staging 1024 MB and
# 100 req/s; prod 2048 MB and 1000 req/s with provider keys from Secrets
# Manager.  Inputs come from the environment:
#   OMNI_DEPLOY_BUCKET  S3 bucket for the packaged zips (required)
#   AWS_REGION          region (required)
#   OMNI_SECRETS_ARN    Secrets Manager ARN of the provider keys (prod: required)
#   OMNI_REDIS_URL      optional Redis URL for cache and RAG
# --dry-run prints every command it would run after validating the
# inputs, and touches neither AWS nor the build.
set -euo pipefail

usage() {
    echo "usage: $0 [--dry-run] [--skip-build] staging|prod" >&2
    exit 2
}
die() {
    echo "deploy: $*" >&2
    exit 1
}

dry=0 build=1 stage=
for a in "$@"; do
    case "$a" in
    --dry-run) dry=1 ;;
    --skip-build) build=0 ;;
    -h | --help) usage ;;
    -*) echo "deploy: unknown option '$a'" >&2; usage ;;
    *) [ -z "$stage" ] || usage; stage=$a ;;
    esac
done
[ -n "$stage" ] || usage
case "$stage" in
staging | prod) ;;
*) die "unknown stage '$stage': want staging or prod" ;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
# The function runs on Graviton (arm64); the template names the arm64
# zips, which `make lambda ARCH=arm64` writes.
arch=arm64
bucket=${OMNI_DEPLOY_BUCKET:-}
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
secret=${OMNI_SECRETS_ARN:-}
redis=${OMNI_REDIS_URL:-}
stack=omni-$stage

[ -n "$bucket" ] || die "OMNI_DEPLOY_BUCKET is not set: name the S3 bucket for the zips"
[[ "$bucket" =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] ||
    die "bad bucket name '$bucket'"
[ -n "$region" ] || die "AWS_REGION is not set"
[[ "$region" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]] || die "bad region '$region'"
if [ "$stage" = prod ] && [ -z "$secret" ]; then
    die "prod reads provider keys from Secrets Manager: set OMNI_SECRETS_ARN"
fi
if [ -n "$secret" ] &&
    ! [[ "$secret" =~ ^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$ ]]; then
    die "bad secret ARN '$secret'"
fi
if [ -n "$redis" ] && ! [[ "$redis" =~ ^(redis|rediss|unix):// ]]; then
    die "bad OMNI_REDIS_URL: want redis://, rediss:// or unix://"
fi

# Keys never go on a command line: the Redis URL may hold a password, so
# it travels in a parameter file readable by us alone.
params=(Stage="$stage")
[ -z "$secret" ] || params+=(SecretArn="$secret")
packaged=$top/build/lambda/packaged-$stage.yaml
cmds=()
[ $build -eq 0 ] || cmds+=("make -C $top lambda ARCH=$arch")
cmds+=(
    "aws sts get-caller-identity --region $region"
    "aws cloudformation package --region $region --template-file $top/deployment/template.yaml --s3-bucket $bucket --s3-prefix omni/$stage --output-template-file $packaged"
    "aws cloudformation deploy --region $region --stack-name $stack --template-file $packaged --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset --parameter-overrides ${params[*]}${redis:+ RedisUrl=(from OMNI_REDIS_URL)}"
    "aws cloudformation describe-stacks --region $region --stack-name $stack --query 'Stacks[0].Outputs' --output table"
)

if [ $dry -eq 1 ]; then
    echo "# deploy $stack ($arch, region $region) - dry run, nothing is executed"
    if [ "$stage" = prod ]; then
        echo "# stage prod: 2048 MB, 1000 req/s (burst 2000), reserved concurrency 2000, keys from Secrets Manager"
    else
        echo "# stage staging: 1024 MB, 100 req/s (burst 200), reserved concurrency 200${secret:+, keys from Secrets Manager}"
    fi
    for c in "${cmds[@]}"; do echo "$c"; done
    exit 0
fi

command -v aws >/dev/null || die "missing tool 'aws': install the AWS CLI v2"
[ $build -eq 0 ] || command -v make >/dev/null || die "missing tool 'make'"
if [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ -z "${AWS_PROFILE:-}" ] &&
    [ ! -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] &&
    [ -z "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ]; then
    die "missing AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
fi

for c in "${cmds[@]}"; do
    echo "+ $c"
    if [[ "$c" == "aws cloudformation deploy"* ]]; then
        extra=()
        [ -z "$redis" ] || extra=(RedisUrl="$redis")
        aws cloudformation deploy --region "$region" --stack-name "$stack" \
            --template-file "$packaged" \
            --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
            --no-fail-on-empty-changeset \
            --parameter-overrides "${params[@]}" "${extra[@]}"
    else
        eval "$c"
    fi
done
