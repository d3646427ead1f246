# Production image. Untested on the development machine (no Docker engine there); kept simple.
# Build stage: wheels for the app and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY app ./app
# The dependencies exactly as locked (each checked against its hash), then the app alone.
RUN pip wheel --no-cache-dir --wheel-dir /wheels --require-hashes -r requirements.lock \
 && pip wheel --no-cache-dir --wheel-dir /wheels --no-deps .

# Run stage: no compilers, a non-root user, migrations then the server.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ENV=production
RUN useradd --system --uid 10001 --home /srv/firstcontact firstcontact
WORKDIR /srv/firstcontact
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --no-deps /wheels/* && rm -rf /wheels
# `firstcontact db upgrade` finds migrations/ in the working directory of an installed wheel.
COPY alembic.ini ./
COPY migrations ./migrations
USER firstcontact
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sh", "-c", "firstcontact db upgrade && exec firstcontact serve --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2}"]
