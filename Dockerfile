# One image for every service of docker-compose.yml: the web process (gunicorn), the Celery
# workers and beat, and the one-shot migrate. Its packages are the versions uv.lock pins, with
# PyTorch's CPU build of the locked torch: no CUDA in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    OUTFITS_VAR_DIR=/app/var DJANGO_STATIC_ROOT=/app/staticfiles \
    HF_HOME=/app/var/huggingface
WORKDIR /app

# The lock resolves torch from PyPI, whose Linux wheel pulls in the CUDA runtime (several GB):
# every locked package but torch, torchvision and that runtime is installed as pinned, then
# torch and torchvision at their locked versions from PyPI's CPU build index (2.x.y+cpu
# satisfies ==2.x.y). --no-deps: the export is already the whole closure (pip check below
# proves the filter dropped nothing that is needed). uv is the lock's version.
COPY pyproject.toml uv.lock ./
RUN UV_VERSION=$(python -c "import tomllib; print(next(p['version'] for p in \
        tomllib.load(open('uv.lock', 'rb'))['package'] if p['name'] == 'uv'))") \
    && pip install --no-cache-dir "uv==$UV_VERSION" \
    && uv export --frozen --no-emit-project --no-hashes --no-header --no-annotate \
        --output-file /tmp/locked.txt \
    && grep -E '^(torch|torchvision)==' /tmp/locked.txt > /tmp/torch.txt \
    && grep -v -E '^(torch|torchvision|triton|nvidia-|cuda-)' /tmp/locked.txt > /tmp/rest.txt \
    && uv pip install --system --no-cache --no-deps -r /tmp/rest.txt \
    && uv pip install --system --no-cache --no-deps \
        --index-url https://download.pytorch.org/whl/cpu -r /tmp/torch.txt \
    && rm /tmp/locked.txt /tmp/torch.txt /tmp/rest.txt

COPY README.md manage.py gunicorn.conf.py ./
COPY outfits ./outfits
COPY catalog ./catalog
COPY embeddings ./embeddings
COPY shop ./shop
COPY templates ./templates
COPY static ./static
RUN uv pip install --system --no-cache --no-deps . && rm -rf build \
    && pip uninstall --yes uv \
    && pip check \
    && python -c "import torch; assert torch.version.cuda is None, torch.__version__"
# A throwaway key: the settings need one to load; the services get theirs from the compose file.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

# Not root: the services run as `outfits`, the owner of the shared volume's mount point (a new
# named volume takes the owner of the image's directory).
RUN useradd --create-home --uid 10001 outfits \
    && mkdir -p /app/var && chown outfits:outfits /app/var
USER outfits

EXPOSE 8000
CMD ["gunicorn", "outfits.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
