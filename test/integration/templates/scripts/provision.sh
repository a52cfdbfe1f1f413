#!/bin/sh
# Run by pool-with-files.json's extension, which names this file by a path
# relative to the template: the CLI sends it with the deployment.
echo "extension of $1"
