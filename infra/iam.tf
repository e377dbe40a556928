# One service account per job, each granted on the one resource it needs.
#   runtime: what the functions run as; reads the two secrets, nothing else.
#   build:   what Cloud Build runs as when it turns the source into an image.
#   invoker: what Pub/Sub push (or the Eventarc trigger) calls the events function as.

resource "google_service_account" "runtime" {
  account_id   = "${var.name_prefix}-run"
  display_name = "tulip-link functions (runtime)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "tulip-link functions (Cloud Build)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "invoker" {
  account_id   = "${var.name_prefix}-invoker"
  display_name = "tulip-link events function invoker (Pub/Sub push, Eventarc)"
  depends_on   = [google_project_service.enabled]
}

# Build: the only project-level grants in this configuration. Log writing has no narrower
# scope, and the build reads the source from the bucket Cloud Functions stages it in
# (gcf-v2-sources-*), which only exists after the first deploy.
resource "google_project_iam_member" "build_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "build_reads_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# Invoker grants go on the Cloud Run service behind each gen2 function.
resource "google_cloud_run_service_iam_member" "webhook_public" {
  #checkov:skip=CKV_GCP_102:The webhook must be reachable by third-party systems; the code authenticates every request and the precondition forbids WEBHOOK_AUTH=none while public.
  count    = var.webhook_public ? 1 : 0
  location = var.region
  service  = google_cloudfunctions2_function.link["webhook"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "events_invoker" {
  location = var.region
  service  = google_cloudfunctions2_function.link["events"].name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# Pub/Sub's own service agent moves undeliverable messages to the dead-letter topic: it must
# publish there and acknowledge them on the source subscription.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  count        = var.use_eventarc_trigger ? 0 : 1
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
