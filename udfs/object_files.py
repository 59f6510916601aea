"""Files on a local disk or an object store, through pyarrow's filesystems: what the
export writers and the in-place readers need on the executors. The endpoint and the
credentials come from the AWS SDK's default chain and AWS_ENDPOINT_URL_S3 (see
jobs/core/object_store.py, which puts them in place on the driver and the workers)."""
from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

S3_SCHEMES = ("s3", "s3a", "s3n")


def scheme(uri: str) -> str:
    return urlparse(uri).scheme.lower() if "://" in uri else ""


def is_s3(uri: str) -> bool:
    return scheme(uri) in S3_SCHEMES


def is_local(uri: str) -> bool:
    return scheme(uri) in ("", "file")


def boto_uri(uri: str) -> str:
    """Hadoop's s3a:// and s3n:// name the same objects as pyarrow's, boto3's and MLflow's s3://."""
    return f"s3://{uri.split('://', 1)[1]}" if is_s3(uri) else uri


def filesystem(uri: str):
    """(pyarrow filesystem, path) for a local path, file:// URI or object store URI."""
    from pyarrow import fs
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return fs.LocalFileSystem(), os.path.abspath(unquote(parsed.path) if parsed.scheme else uri)
    return fs.FileSystem.from_uri(boto_uri(uri))


def join(folder: str, *names: str) -> str:
    return "/".join([folder.rstrip("/"), *names]) if not is_local(folder) else os.path.join(folder, *names)


def make_dirs(folder: str) -> None:
    filesystem_, path = filesystem(folder)
    filesystem_.create_dir(path, recursive=True)


def list_names(folder: str) -> list[str]:
    from pyarrow import fs
    filesystem_, path = filesystem(folder)
    infos = filesystem_.get_file_info(fs.FileSelector(path, allow_not_found=True))
    return sorted(os.path.basename(i.path) for i in infos)


def remove(uri: str) -> None:
    filesystem_, path = filesystem(uri)
    filesystem_.delete_file(path)


def remove_tree(folder: str) -> None:
    from pyarrow import fs
    filesystem_, path = filesystem(folder)
    if filesystem_.get_file_info(path).type != fs.FileType.NotFound:
        filesystem_.delete_dir(path)


def exists(uri: str) -> bool:
    from pyarrow import fs
    filesystem_, path = filesystem(uri)
    return filesystem_.get_file_info(path).type != fs.FileType.NotFound


def upload(local_path: str, uri: str) -> None:
    """Copy a local file to `uri` (a local path too); the object appears whole or not at all."""
    from pyarrow import fs
    filesystem_, path = filesystem(uri)
    if isinstance(filesystem_, fs.LocalFileSystem):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        fs.copy_files(local_path, tmp, destination_filesystem=filesystem_)
        os.replace(tmp, path)
    else:
        fs.copy_files(local_path, path, destination_filesystem=filesystem_)   # S3 PUTs are atomic


def read_bytes(uri: str) -> bytes:
    filesystem_, path = filesystem(uri)
    with filesystem_.open_input_stream(path) as fh:
        return fh.read()
