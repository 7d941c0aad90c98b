"""The manuals domain's commands live in helpdesk/kb_cli.py (light module, no views imported)."""
from helpdesk.kb_cli import kb_cli

COMMANDS = [kb_cli]
