# One image for both processes; the command picks the role:
#   web (default):  gunicorn on $PORT
#   worker:         docker run IMAGE rq worker --url "$REDIS_URL" ... (see Procfile)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    WEB_CONCURRENCY=4

WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Built outside /app and installed: gunicorn and rq put the working directory first on
# sys.path, so a source copy in /app would shadow the installed package. The shipped
# mappings go inside the package (setup.py copies mappings/ to bridge/shipped/); your
# own go in a folder mounted at /app/mappings (the default BRIDGE_MAPPINGS_DIR,
# ./mappings) or named by BRIDGE_MAPPINGS_DIR, layered over them.
COPY README.md setup.py pyproject.toml /tmp/src/
COPY bridge /tmp/src/bridge
COPY mappings /tmp/src/mappings
RUN pip install --no-deps /tmp/src \
    && rm -rf /tmp/src \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin bridge

USER 10001
EXPOSE 8000

# Web containers answer /healthz; worker containers override it (see README, "Containers").
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bridge", "healthcheck"]

# Exec form: gunicorn is PID 1 and receives SIGTERM directly (no shell in between).
# Gunicorn binds 0.0.0.0:$PORT when PORT is set, and reads WEB_CONCURRENCY for workers;
# bridge/gunicorn_conf.py sets the rest (gthread workers: a slow client holds a thread,
# not a worker; JSON for the requests gunicorn refuses itself).
CMD ["gunicorn", "--config", "python:bridge.gunicorn_conf", "bridge.intake:create_app()"]
