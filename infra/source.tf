# The function's source: exactly main.py, the function package and requirements.txt.
# The object name carries the archive's hash, so a code change redeploys the functions.

locals {
  repository_root = "${path.module}/.."
  source_files = concat(
    ["main.py", "requirements.txt"],
    sort(fileset(local.repository_root, "function/**/*.py")),
  )
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/build/function-source.zip"
  # Same bytes on every machine, whatever its umask.
  output_file_mode = "0666"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.value
      content  = file("${local.repository_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs made from the public repository; there is nothing whose access needs auditing.
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Holds only build inputs, all reproducible from the repository.
  force_destroy = true
  labels        = var.labels

  # Each archive has a name of its own (its hash), so there are never "newer versions" of one:
  # a code change replaces the object, which Terraform deletes, leaving a noncurrent version.
  # Those are kept 30 days (to go back to) and then deleted; the live archive is never touched.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  name   = "function-source-${data.archive_file.source.output_sha256}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Images are built from the repository's own code; Google-managed encryption is enough.
  repository_id = "${var.name_prefix}-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images Cloud Build makes of the tulip-link functions."
  labels        = var.labels

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.enabled]
}
