# budgetguard: the service in a container. Build: docker build -t budgetguard .
# Run (the rules are yours, mounted read-only; nothing is baked in):
#   docker run --read-only -e OPENAI_ADMIN_KEY=sk-admin-... \
#     -v "$PWD/rules.yaml:/config/rules.yaml:ro" -v budgetguard-data:/data -p 9464:9464 budgetguard
# Without a rules file at /config/rules.yaml, `run` exits 2 and says where it looked.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md rules.example.yaml ./
COPY budgetguard ./budgetguard
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BUDGETGUARD_DATABASE_URL=sqlite:////data/budgetguard.db \
    BUDGETGUARD_RULES=/config/rules.yaml \
    BUDGETGUARD_HTTP_PORT=9464
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin budgetguard \
    && mkdir -p /data /config && chown budgetguard /data
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464
# liveness (/livez), not readiness: an OpenAI outage or a budget that is unknown (/healthz
# 503) must not mark the container unhealthy; a dead scheduler, a stuck job or workers that
# cannot start must
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BUDGETGUARD_HTTP_PORT', '9464') + '/livez', timeout=5)"]
ENTRYPOINT []
CMD ["budgetguard", "run"]
