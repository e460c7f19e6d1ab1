# One image for every Pawpost process: smtp, worker, web, live and the one-shot migrate.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PAWPOST_DATA_DIR=/var/lib/pawpost

RUN useradd --system --home /var/lib/pawpost --create-home pawpost

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pawpost ./pawpost
COPY clikit ./clikit
COPY threads ./threads
COPY inbound ./inbound
COPY outbound ./outbound
COPY portal ./portal
RUN pip install .

USER pawpost
EXPOSE 2525 5000 5001
ENTRYPOINT ["pawpost"]
CMD ["up"]
