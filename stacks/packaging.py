"""Stage each deployable unit, with the shared ``contracts`` package, for upload.

Every unit is shipped as its own folder, and the shared contracts travel inside it (see
docs/architecture.md, "Shared contracts"):

- a Lambda asset is ``lambdas/__init__.py`` + ``lambdas/environment.py`` (settings parsing)
  + ``lambdas/<name>/`` + ``contracts/``, so its
  handler ``lambdas.<name>.app.lambda_handler`` imports exactly as it does in the tests;
- the Glue job's ``--extra-py-files`` is a zip of ``glue_jobs/`` + ``contracts/``;
- the SageMaker training source is ``training/`` + ``inference/`` + ``contracts/`` (no
  ``requirements.txt``: the derived training image already holds those packages, and the
  training subnets could not reach PyPI anyway), staged by ``training/source_archive.py``;
- the derived images' build context is ``containers/`` with each image's requirements file
  staged beside its Dockerfile (``CONTAINER_REQUIREMENTS``).

Staging is pure file copying (no docker) and deterministic: the same sources give the same
bytes, so CDK asset hashes only change when code does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import zipfile
from pathlib import Path

# What the training job's source folder holds, and its staging, are the training job's own
# contract (training/source_archive.py: the launcher packs it without importing the stacks).
from training.source_archive import LOCAL_ONLY_MODULES as LOCAL_ONLY_MODULES
from training.source_archive import TRAINING_PACKAGES as TRAINING_PACKAGES
from training.source_archive import local_only as local_only
from training.source_archive import stage_directory as stage_directory
from training.source_archive import stage_training_source as stage_training_source

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO_ROOT / "build"

#: Packages that every artifact carries.
SHARED_PACKAGES = ("contracts",)

#: Modules of the ``lambdas`` package that every function's asset carries.
LAMBDA_SHARED_MODULES = ("__init__.py", "environment.py")

#: Project packages a function's asset carries beyond its own folder and the contracts: the
#: prediction function also serves FHIR and the CDS Hooks routes (issue #18).
LAMBDA_EXTRA_PACKAGES: dict[str, tuple[str, ...]] = {
    "predict": ("lambdas/cds_hooks", "fhir_mapping"),
    "batch_writer": ("worklist",),
    "worklist_api": ("worklist",),
}

#: Pure-Python libraries (import names) copied from the installed, requirements.txt-pinned
#: distribution into a function's asset: the Powertools layer does not carry them. PyJWT is
#: pure Python; the ``cryptography`` it verifies RS384/ES384 with is in the Powertools v3
#: layer (built per Python version and architecture for its data masking utility).
LAMBDA_VENDORED: dict[str, tuple[str, ...]] = {"cds_authorizer": ("jwt",)}

#: What the Glue job's extra Python files hold.
GLUE_PACKAGES = ("glue_jobs", *SHARED_PACKAGES)

#: Derived image (folder under ``containers/``) -> the project file its image installs. The
#: serving image installs what every model archive carries as ``code/requirements.txt``
#: (``training/artifact.py`` copies ``inference/requirements.txt``).
CONTAINER_REQUIREMENTS = {
    "training": "training/requirements.txt",
    "serving": "inference/requirements.txt",
}
CONTAINERS_DIR = "containers"
#: The build script at the root of the build context.
CONTAINER_BUILD_SCRIPT = "build.sh"

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _python_files(package_dir: Path, root: Path = REPO_ROOT) -> list[Path]:
    """Files of a package that an artifact needs, in a stable order."""
    return sorted(
        path
        for path in package_dir.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        and not local_only(path.relative_to(root).as_posix())
    )


def stage_lambda(name: str, build_root: Path = BUILD_ROOT, root: Path = REPO_ROOT) -> Path:
    """Stage the asset folder of the Lambda ``lambdas/<name>``."""
    packages = [f"lambdas/{name}", *LAMBDA_EXTRA_PACKAGES.get(name, ()), *SHARED_PACKAGES]
    destination = stage_directory(packages, build_root / "lambda" / name, root)
    for shared in LAMBDA_SHARED_MODULES:
        shutil.copy2(root / "lambdas" / shared, destination / "lambdas" / shared)
    for module in LAMBDA_VENDORED.get(name, ()):
        shutil.copytree(_installed_package(module), destination / module, ignore=_IGNORED)
    return destination


def _installed_package(module: str) -> Path:
    """The folder of an installed pure-Python package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{module} is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def stage_container_context(build_root: Path = BUILD_ROOT, root: Path = REPO_ROOT) -> Path:
    """Stage the derived images' build context: ``containers/`` plus each requirements file."""
    destination = build_root / CONTAINERS_DIR
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    source = root / CONTAINERS_DIR
    shutil.copy2(source / CONTAINER_BUILD_SCRIPT, destination / CONTAINER_BUILD_SCRIPT)
    for image, requirements in CONTAINER_REQUIREMENTS.items():
        shutil.copytree(source / image, destination / image, ignore=_IGNORED)
        shutil.copy2(root / requirements, destination / image / "requirements.txt")
    return destination


def content_digest(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under ``folder``, in order.

    Independent of mtimes, permissions and the folder's own location, so the same sources
    give the same digest on every machine.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix().encode()
        content = path.read_bytes()
        for part in (name, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def build_glue_library(build_root: Path = BUILD_ROOT, root: Path = REPO_ROOT) -> Path:
    """Zip the Glue job's Python library deterministically and return the zip's path."""
    target = build_root / "glue" / "readmission_glue_lib.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in GLUE_PACKAGES:
            for path in _python_files(root / package, root):
                info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    return target
