"""Builds TaskFlow engines for one run each, without TaskFlow's per-run overheads.

An engine keeps its run's state in its own storage objects; what TaskFlow's
persistence backend adds is durability, which the flow journal provides at
a fraction of the cost. So engines get an ephemeral backend whose writes are
no-ops, and are constructed directly rather than looked up through stevedore
entry points on every run.
"""

from taskflow.engines.action_engine import engine as action_engine
from taskflow import exceptions as tf_exceptions
from taskflow.persistence import base as persistence_base
from taskflow.persistence import models
from taskflow.utils import persistence_utils


class _EphemeralConnection(persistence_base.Connection):
    """Accepts every save and keeps nothing: the engine holds the live state."""

    def __init__(self, backend):
        self._backend = backend

    @property
    def backend(self):
        return self._backend

    def close(self):
        pass

    def upgrade(self):
        pass

    def clear_all(self):
        pass

    def validate(self):
        pass

    def update_atom_details(self, atom_detail):
        return atom_detail

    def update_flow_details(self, flow_detail):
        return flow_detail

    def save_logbook(self, book):
        return book

    def destroy_logbook(self, book_uuid):
        pass

    def _nothing(self, *args, **kwargs):
        raise tf_exceptions.NotFound('ephemeral storage keeps nothing')

    get_logbook = get_flow_details = get_atom_details = _nothing

    def get_logbooks(self, lazy=False):
        return iter(())

    def get_flows_for_book(self, book_uuid):
        return iter(())

    def get_atoms_for_flow(self, fd_uuid):
        return iter(())


class EphemeralBackend(persistence_base.Backend):
    def __init__(self):
        super().__init__({})
        self._connection = _EphemeralConnection(self)

    def get_connection(self):
        return self._connection

    def close(self):
        pass


_BACKEND = EphemeralBackend()  # stateless: one serves every engine


def load(flow, store):
    """A serial engine for one run of ``flow`` with ``store`` injected."""
    book = models.LogBook(flow.name)
    flow_detail = persistence_utils.create_flow_detail(flow, book=book)
    engine = action_engine.SerialActionEngine(flow, flow_detail, _BACKEND, {})
    engine.storage.inject(store)
    return engine
