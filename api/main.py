"""The ASGI entry point uvicorn imports in each worker (`mappa-record serve`)."""

from fastapi import FastAPI

from api.app import create_app
from service.bootstrap import start
from service.runtime.settings import load_settings


def build() -> FastAPI:
    """Start the service from the environment and wrap it in the HTTP API."""
    return create_app(start(load_settings(), run_migrations=False))
