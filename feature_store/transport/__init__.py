"""How the service reads the store: one interface (``base.StoreTransport``), one implementation
per transport (``resp``: pipelined RESP over TCP, unix socket or TLS; ``redis_py``: Redis
Cluster), chosen once when connecting (``factory.open_transport``)."""
