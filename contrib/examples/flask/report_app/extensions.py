"""The app's extensions, created unbound: ``create_app`` initialises them on each Flask app."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from celeriac_flask import FlaskCeleriac


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
celeriac = FlaskCeleriac()
