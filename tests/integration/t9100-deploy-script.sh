#!/usr/bin/env bash
# t9100 - deploy.sh validates its inputs and prints complete command
# sequences in --dry-run, with no AWS access; a wrong stage, a missing
# tool and missing credentials each get a clear error.
set -u
cd "$(dirname "$0")/../.."
d=deployment/scripts/deploy.sh
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

export OMNI_DEPLOY_BUCKET=omni-artifacts AWS_REGION=eu-west-1
unset OMNI_SECRETS_ARN OMNI_REDIS_URL AWS_PROFILE AWS_ACCESS_KEY_ID

out=$($d --dry-run staging) || fail "staging dry run exited $?"
for want in "make -C .* lambda ARCH=arm64" "aws sts get-caller-identity" \
    "aws cloudformation package .*--s3-bucket omni-artifacts --s3-prefix omni/staging" \
    "aws cloudformation deploy .*--stack-name omni-staging .*Stage=staging" \
    "aws cloudformation describe-stacks .*omni-staging" "1024 MB, 100 req/s"; do
    grep -Eq "$want" <<<"$out" || fail "staging dry run lacks '$want'"
done

arn=arn:aws:secretsmanager:eu-west-1:123456789012:secret:omni/prod-AbCdEf
out=$(OMNI_SECRETS_ARN=$arn OMNI_REDIS_URL=redis://:s3cretpw@10.0.0.5:6379/0 \
    $d --dry-run prod) || fail "prod dry run exited $?"
grep -q "SecretArn=$arn" <<<"$out" || fail "prod dry run lacks the secret ARN"
grep -q "2048 MB, 1000 req/s" <<<"$out" || fail "prod settings missing"
grep -q "s3cretpw" <<<"$out" && fail "the Redis password was printed"

expect_error() {  # want-text, command...
    local want=$1; shift
    local err
    err=$("$@" 2>&1 >/dev/null) && fail "'$*' succeeded"
    grep -q "$want" <<<"$err" || fail "'$*' said '$err', want '$want'"
}
expect_error "unknown stage 'qa'" $d --dry-run qa
expect_error "usage:" $d --dry-run
expect_error "set OMNI_SECRETS_ARN" $d --dry-run prod
expect_error "bad secret ARN" env OMNI_SECRETS_ARN=arn:nope $d --dry-run prod
expect_error "OMNI_DEPLOY_BUCKET is not set" env -u OMNI_DEPLOY_BUCKET $d --dry-run staging
expect_error "AWS_REGION is not set" env -u AWS_REGION $d --dry-run staging
expect_error "bad OMNI_REDIS_URL" env OMNI_REDIS_URL=http://x $d --dry-run staging

# No aws on PATH: a clear error before anything runs.
mkdir -p "$tmp/bin"
for t in bash env make dirname cat grep; do ln -sf "$(command -v $t)" "$tmp/bin/$t"; done
expect_error "missing tool 'aws'" env PATH="$tmp/bin" HOME="$tmp" $d --skip-build staging
# aws present but no credentials.
printf '#!/bin/sh\necho "aws $*" >> %s/aws.log\n' "$tmp" >"$tmp/bin/aws"
chmod +x "$tmp/bin/aws"
expect_error "missing AWS credentials" env PATH="$tmp/bin" HOME="$tmp" $d --skip-build staging
[ -f "$tmp/aws.log" ] && fail "aws was called without credentials"
# With credentials the fake aws receives the sequence, in order.
env PATH="$tmp/bin" HOME="$tmp" AWS_PROFILE=test $d --skip-build staging >/dev/null ||
    fail "deploy with a fake aws failed"
got=$(cut -d' ' -f2-3 "$tmp/aws.log" | tr '\n' ,)
[ "$got" = "sts get-caller-identity,cloudformation package,cloudformation deploy,cloudformation describe-stacks," ] ||
    fail "aws calls were '$got'"
echo "deploy script: all checks passed"
