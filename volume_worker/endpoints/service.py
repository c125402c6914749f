"""The service's own calls (as in Cinder's volume API): capabilities, cleanup, log levels.

A mixin of ``VolumeManager``: it uses the manager's ``driver``, ``reporter``
and ``operations``.
"""

from volume_worker import validation


class ServiceEndpoints:

    @validation.endpoint(read_only=True)
    def get_capabilities(self, context, discover=False):
        """The driver's ``init_capabilities`` (static stats and standard and
        vendor ``properties``) with the report's state and usage keys.

        ``discover`` asks the driver again; otherwise its last answer.
        """
        validation.check_bool(discover, 'discover')
        return self.reporter.capabilities(discover=discover)

    @validation.endpoint
    def publish_service_capabilities(self, context):
        """A report soon (debounced with the others), from the report loop."""
        self.reporter.mark_dirty()
