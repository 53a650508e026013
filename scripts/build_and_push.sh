#!/usr/bin/env bash
# Builds the worker image (Dockerfile at the repository root) for RunPod and pushes it.
#
#   POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker scripts/build_and_push.sh
#
# POSE_FACTORY_IMAGE  registry/repository of the image, without a tag (required)
# TAG                 image tag (default: the git short sha, "-dirty" when the tree has changes)
# PUSH_LATEST=1       also tag and push :latest
# NO_PUSH=1           build only
# Log in first (`docker login <registry>`); no credential is read or printed here.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build_and_push: $*" >&2; exit 2; }

IMAGE=${POSE_FACTORY_IMAGE:-}
[ -n "$IMAGE" ] || die "POSE_FACTORY_IMAGE is not set: set it to the image's registry/repository, e.g. POSE_FACTORY_IMAGE=docker.io/<user>/pose-factory-worker (no tag; TAG defaults to the git short sha)"
case "$IMAGE" in
  *@*) die "POSE_FACTORY_IMAGE=$IMAGE: give the repository without a digest" ;;
  */*) ;;
  *) die "POSE_FACTORY_IMAGE=$IMAGE: expected registry/user/name or user/name, e.g. docker.io/<user>/pose-factory-worker" ;;
esac
last=${IMAGE##*/}
case "$last" in *:*) die "POSE_FACTORY_IMAGE=$IMAGE: leave the tag out and set TAG instead" ;; esac

if [ -z "${TAG:-}" ]; then
  TAG=$(git rev-parse --short HEAD 2>/dev/null) || die "TAG is not set and this is not a git checkout: set TAG"
  if [ -n "$(git status --porcelain 2>/dev/null)" ]; then TAG="$TAG-dirty"; fi
fi
command -v docker >/dev/null 2>&1 || die "docker is not installed or not on the PATH"

REF="$IMAGE:$TAG"
echo "build_and_push: building $REF (linux/amd64)"
docker build --platform linux/amd64 -t "$REF" .
if [ "${PUSH_LATEST:-0}" = 1 ]; then docker tag "$REF" "$IMAGE:latest"; fi
if [ "${NO_PUSH:-0}" = 1 ]; then
  echo "build_and_push: built $REF (NO_PUSH=1, not pushed)"
  exit 0
fi
docker push "$REF"
if [ "${PUSH_LATEST:-0}" = 1 ]; then docker push "$IMAGE:latest"; fi
echo "build_and_push: pushed $REF — use it as the endpoint's container image"
