# The dashboard, HTTP API and supervisor in one image (what `make run` starts).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PERSEPHONE_DATA_DIR=/data

WORKDIR /app

# Mock pods run the agent from this same environment, so its needs come along.
COPY requirements.txt ./
COPY agent/requirements.txt agent/requirements.txt
RUN pip install -r requirements.txt

COPY .streamlit .streamlit
COPY app app
COPY agent agent
COPY pages pages
COPY fakes fakes
COPY server.py streamlit_app.py ./

RUN useradd --create-home --uid 10001 persephone \
    && mkdir -p /data \
    && chown persephone /data
USER 10001
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["python", "-m", "streamlit", "run", "server.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
