"""Piccolo configuration: the engine built from settings, and the app registry.

Piccolo finds this module through ``PICCOLO_CONF=booking.piccolo_conf``. Building
the engine opens no connection; the pool is started in the app's lifespan.
"""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from booking.settings import get_settings

DB = PostgresEngine(config={"dsn": get_settings().database_url})

APP_REGISTRY = AppRegistry(apps=["booking.piccolo_app"])
