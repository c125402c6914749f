"""How the command-line tools print: a table on a terminal, JSON for scripts.

On a terminal a result is a table (a list of records) or a two-column
table (one record); ``--json``, or a stdout that is not a terminal (a pipe,
a file), gives JSON. Timestamps are in the one form of ``timestamps``.
"""

import argparse
import json
import sys

from volume_worker import timestamps

JSON, TABLE = 'json', 'table'

# Columns a table of records shows when the records have many fields
# (objects): the rest is one --json away.
PREFERRED = ('id', 'name', 'display_name', 'status', 'size', 'volume_id',
             'host', 'binary', 'cluster', 'state', 'operation',
             'backend_state', 'replication_status', 'frozen',
             'heartbeat_age_s', 'resources', 'created_at', 'updated_at',
             'recovered_at')
MAX_COLUMNS = 10
MAX_CELL = 60

_format = None


def add_argument(parser):
    """``--json`` on a parser (and each subcommand's: it may come last)."""
    parser.add_argument('--json', action='store_true',
                        default=argparse.SUPPRESS,
                        help='print JSON (the default when stdout is not a '
                             'terminal); a table otherwise')


def configure(args=None, stream=None):
    """Choose the format from ``--json`` and whether stdout is a terminal."""
    global _format
    stream = stream or sys.stdout
    if getattr(args, 'json', False):
        _format = JSON
    else:
        _format = TABLE if _isatty(stream) else JSON
    return _format


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def current():
    return _format or configure()


def emit(value, indent=None):
    """Print a result: records, one record, or a scalar."""
    value = normalize(value)
    if current() == JSON:
        print(json.dumps(value, indent=indent, sort_keys=True, default=str),
              flush=True)
    else:
        print(render(value), flush=True)


def normalize(value):
    """Timestamps in the one form, whatever holds them."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if hasattr(value, 'strftime'):
        return timestamps.iso(value)
    return value


def render(value):
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return table(value)
        if not value:
            return '(none)'
        return '\n'.join(_cell(v) for v in value)
    if isinstance(value, dict):
        return table([{'field': k, 'value': v}
                      for k, v in sorted(value.items())],
                     columns=('field', 'value'), cell_width=None)
    return _cell(value)


def table(rows, columns=None, cell_width=MAX_CELL):
    """A plain text table; wide records show their main columns."""
    if columns is None:
        seen = []
        for row in rows:
            seen += [k for k in row if k not in seen]
        columns = seen
        if len(columns) > MAX_COLUMNS:
            columns = ([c for c in PREFERRED if c in seen][:MAX_COLUMNS] or
                       seen[:MAX_COLUMNS])
    cells = [[_cell(row.get(c), cell_width) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells])
              for i, c in enumerate(columns)]
    lines = ['  '.join(c.upper().ljust(w) for c, w in zip(columns, widths))
             .rstrip(), '  '.join('-' * w for w in widths)]
    for row in cells:
        lines.append('  '.join(v.ljust(w) for v, w in zip(row, widths))
                     .rstrip())
    hidden = {k for row in rows for k in row} - set(columns)
    if hidden and cell_width is not None:
        lines.append('(%d row%s; %d more field%s with --json)' % (
            len(rows), '' if len(rows) == 1 else 's', len(hidden),
            '' if len(hidden) == 1 else 's'))
    return '\n'.join(lines)


def _cell(value, width=MAX_CELL):
    if value is None:
        text = '-'
    elif isinstance(value, bool):
        text = 'yes' if value else 'no'
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    text = ' '.join(text.split())
    if width is not None and len(text) > width:
        text = text[:width - 3] + '...'
    return text
