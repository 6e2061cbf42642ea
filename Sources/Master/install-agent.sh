#!/bin/sh
# Placeholder: replaced by packaging/install-agent.sh.
echo "paddock: install script for @MASTER_URL@ (@PACKAGE_NAME@ @PACKAGE_SHA256@) is not built yet" >&2
exit 1
