#!/bin/sh
# Regenerate the build system: ./autogen.sh && ./configure && make
# SPDX-License-Identifier: BSD-2-Clause
set -e
cd "$(dirname "$0")"
mkdir -p m4
autoreconf --install --force
