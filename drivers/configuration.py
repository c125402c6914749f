"""A driver's view of its own configuration section.

Each enabled backend has a section in the worker's config file (``[backend1]``);
the driver reads its options through this wrapper so it never needs to know the
section's name.
"""

from oslo_config import cfg


class Configuration:
    """Options of one backend section, readable as attributes.

    ``Configuration(opts, config_group='backend1')`` registers ``opts`` in the
    section and reads them from there.  Without a section (unit tests) the
    options are registered and read from ``[DEFAULT]``.
    """

    def __init__(self, opts=(), config_group=None, conf=None):
        self.conf = conf if conf is not None else cfg.CONF
        self.config_group = config_group
        self.append_config_values(opts)

    def append_config_values(self, opts):
        opts = list(opts)
        if not opts:
            return
        if self.config_group:
            self.conf.register_opts(opts, group=self.config_group)
        else:
            self.conf.register_opts(opts)

    def append_global_config_values(self, opts):
        """Register ``opts`` in [DEFAULT] too, for values backends share."""
        opts = list(opts)
        if opts and self.config_group:
            self.conf.register_opts(opts)

    def safe_get_global(self, name):
        """An option's value in [DEFAULT]; None when not registered there."""
        try:
            value = getattr(self.conf, name)
        except cfg.NoSuchOptError:
            return None
        return None if isinstance(value, cfg.ConfigOpts.GroupAttr) else value

    def _section(self):
        return self.conf[self.config_group] if self.config_group else self.conf

    def safe_get(self, name):
        """Return an option's value, or None when it is not registered."""
        try:
            return getattr(self, name)
        except (AttributeError, cfg.NoSuchOptError):
            return None

    def __getattr__(self, name):
        if name.startswith('_') or name in ('conf', 'config_group'):
            raise AttributeError(name)
        try:
            return getattr(self._section(), name)
        except cfg.NoSuchOptError:
            raise AttributeError(name)
