#!/usr/bin/env python3
"""The Django site the real-app suite runs behind ActAs (tests/e2e/test_django.py)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "actas_site.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
