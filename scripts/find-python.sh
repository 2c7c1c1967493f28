#!/usr/bin/env sh
# Prints a Python interpreter command for the project's .venv: 3.12 (the Lambda runtime)
# when one can be found, through pyenv if need be; else the default python3.
if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1; then
  command -v python3.12; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -n 1)
  if [ -n "$v" ]; then echo "$(pyenv root)/versions/$v/bin/python3.12"; exit 0; fi
fi
echo "warning: no python3.12 found; using python3 (sam build and the packaging check need 3.12)" >&2
command -v python3
