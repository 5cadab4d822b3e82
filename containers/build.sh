#!/usr/bin/env bash
# Build and push each derived image whose tag is not in ECR yet. CodeBuild runs this from the
# staged build context with the variables the TrainingPipeline stack sets on the project:
# <IMAGE>_REPOSITORY_URI, <IMAGE>_IMAGE_TAG and <IMAGE>_BASE_IMAGE for IMAGE in TRAINING, SERVING.
# Tags are content hashes of each image's folder and the repositories are IMMUTABLE, so an
# existing tag already holds exactly this build: it is skipped, never pushed again.
set -euo pipefail

login() {  # <registry host>
  aws ecr get-login-password --region "$AWS_REGION" \
    | docker login --username AWS --password-stdin "$1"
}

build() {  # <folder> <repository uri> <tag> <base image>
  local folder=$1 repository=$2 tag=$3 base=$4
  local name=${repository#*/}
  if aws ecr describe-images --region "$AWS_REGION" --repository-name "$name" \
      --image-ids imageTag="$tag" > /dev/null 2>&1; then
    echo "$name:$tag is in ECR already; not rebuilt"
    return
  fi
  docker build --pull --build-arg BASE_IMAGE="$base" --tag "$repository:$tag" "$folder"
  docker push "$repository:$tag"
}

login "${TRAINING_BASE_IMAGE%%/*}"
login "${TRAINING_REPOSITORY_URI%%/*}"
build training "$TRAINING_REPOSITORY_URI" "$TRAINING_IMAGE_TAG" "$TRAINING_BASE_IMAGE"
build serving "$SERVING_REPOSITORY_URI" "$SERVING_IMAGE_TAG" "$SERVING_BASE_IMAGE"
