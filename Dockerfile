# One image for the web process (gunicorn) and the Celery worker.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OUTFITS_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml README.md ./
COPY outfits ./outfits
COPY catalog ./catalog
COPY embeddings ./embeddings
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache .
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "outfits.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
