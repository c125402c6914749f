"""The CLI's output: tables on a terminal, JSON otherwise, one timestamp form."""

import datetime
import io
import json
import types

from volume_worker.cmd import output
from volume_worker import timestamps


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_format_follows_the_terminal_and_json_wins():
    assert output.configure(None, stream=io.StringIO()) == output.JSON
    assert output.configure(None, stream=Tty()) == output.TABLE
    assert output.configure(types.SimpleNamespace(json=True),
                            stream=Tty()) == output.JSON


def test_one_timestamp_form():
    aware = datetime.datetime(2026, 11, 25, 14, 5, 27, 0,
                              tzinfo=datetime.timezone(
                                  datetime.timedelta(hours=1)))
    naive = datetime.datetime(2026, 11, 25, 13, 5, 27, 123456)
    assert timestamps.iso(aware) == '2026-11-25T13:05:27.000000Z'
    assert timestamps.iso(naive) == '2026-11-25T13:05:27.123456Z'
    # oslo.messaging's notification timestamps, and ISO strings
    assert timestamps.iso('2026-11-25 13:05:27.123456') == \
        '2026-11-25T13:05:27.123456Z'
    assert timestamps.iso('2026-11-25T13:05:27Z') == \
        '2026-11-25T13:05:27.000000Z'
    assert timestamps.iso('not a time') == 'not a time'
    assert timestamps.iso(None) is None


def test_a_table_of_records_shows_main_columns_and_says_what_is_hidden():
    rows = [dict({'id': 'v%d' % i, 'status': 'available', 'size': 1,
                  'created_at': datetime.datetime(2026, 1, 1)},
                 **{'extra%d' % n: n for n in range(12)}) for i in range(2)]
    text = output.render(output.normalize(rows))
    lines = text.splitlines()
    assert lines[0].split() == ['ID', 'STATUS', 'SIZE', 'CREATED_AT']
    assert lines[2].split() == ['v0', 'available', '1',
                                '2026-01-01T00:00:00.000000Z']
    assert lines[-1] == '(2 rows; 12 more fields with --json)'


def test_a_record_is_a_field_value_table_and_cells_stay_one_line():
    text = output.render({'id': 'v1', 'metadata': {'k': 'v'},
                          'bootable': False, 'reason': 'two\nlines',
                          'host': None})
    assert text.splitlines()[0].split() == ['FIELD', 'VALUE']
    values = dict(l.split(None, 1) for l in text.splitlines()[2:])
    assert values == {'bootable': 'no', 'host': '-', 'id': 'v1',
                      'metadata': '{"k": "v"}', 'reason': 'two lines'}


def test_json_output_is_parseable(capsys):
    output.configure(types.SimpleNamespace(json=True))
    output.emit([{'id': 'v1', 'at': datetime.datetime(2026, 1, 1)}])
    assert json.loads(capsys.readouterr().out) == [
        {'id': 'v1', 'at': '2026-01-01T00:00:00.000000Z'}]


def test_every_manage_command_says_what_it_does():
    from volume_worker.cmd import manage
    for key, fn in manage.COMMANDS.items():
        assert (fn.__doc__ or '').strip(), (
            '%s has no docstring: volume-worker-manage --help lists each '
            'command with the first line of its docstring' % ' '.join(
                w for w in key if w))
    text = manage.command_list()
    assert all(' '.join(w for w in key if w) in text
               for key in manage.COMMANDS)
