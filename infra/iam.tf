# One service account per job, each granted on the one resource it needs.
#   runtime[<sender>]:  what a sender's webhook function runs as; reads its own sender's secret,
#                       and the Tulip token only in direct mode or with tulip_dry_runs; in queue
#                       mode publishes to the requests topic. Nothing else: no other sender's
#                       secret, and in queue mode (by default) not the Tulip token.
#   runtime["events"]:  what the events function runs as; reads the Tulip token and publishes a
#                       message that needs a person to the dead-letter topic, nothing else (it
#                       never sees a sender's secret, and may not publish to the requests topic).
#   build:   what Cloud Build runs as when it turns the source into an image.
#   invoker: what Pub/Sub push (or the Eventarc trigger) calls the events function as.

resource "google_service_account" "runtime" {
  for_each     = local.functions
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "tulip-link ${each.key} function (runtime)"
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

# Deploying a function, a push subscription or a trigger that runs as an account needs actAs on
# it. `deployer` gets that here, on this deployment's own accounts and no others (project-wide
# Service Account User would let its holder act as every account of the project, the invoker
# of any private service included).
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = var.deployer == "" ? {} : merge(
    { for key, account in google_service_account.runtime : key => account.name },
    { build = google_service_account.build.name, invoker = google_service_account.invoker.name },
  )
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = var.deployer
}

# Build: the only project-level grants in this configuration. Log writing has no narrower
# scope. The build fetches the source from the bucket Cloud Functions stages it in
# (gcf-v2-sources-<project number>-<region>, each function's under its own name), which only
# exists after the first deploy, so the grant is on the project, narrowed by a condition to this
# region's such buckets and, in them, to this deployment's functions' objects: it reads no other
# workload's source. Object Viewer: the images go to Artifact Registry (its own grant below), so
# nothing is written there. roles/run.builder would grant far more.
resource "google_project_iam_member" "build_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "build_uses_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title       = "this deployment's staged sources only"
    description = "The objects Cloud Functions stages this deployment's function sources as."
    expression = join(" && ", [
      "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")",
      format("resource.name.extract(\"projects/_/buckets/{bucket}/objects/\").endsWith(\"-%s\")", var.region),
      format("(%s)", join(" || ", local.staged_sources)),
    ])
  }
}

locals {
  # Each function's source, as Cloud Functions stages it: under the function's name.
  staged_sources = [
    for name in sort(keys(local.functions)) :
    format("resource.name.extract(\"/objects/{object}\").startsWith(\"%s-%s/\")", var.name_prefix, name)
  ]
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

# The Eventarc trigger (use_eventarc_trigger) acts through Eventarc's service agent; in a new
# project its role arrives late and the first trigger fails ("Permission denied while using the
# Eventarc Service Agent", terraform-provider-google#25294). Granted explicitly, then waited for.
resource "google_project_iam_member" "eventarc_agent" {
  count   = var.use_eventarc_trigger ? 1 : 0
  project = var.project_id
  role    = "roles/eventarc.serviceAgent"
  member  = google_project_service_identity.eventarc[0].member
}

# IAM changes take about two minutes to apply everywhere, sometimes seven or more. A build that
# starts before its account's grants are live fails with "Access to bucket ... denied"
# (the provider's own acceptance test waited 60 s and still flaked; the wait was doubled:
# GoogleCloudPlatform/magic-modules#11909). The functions wait for this.
resource "time_sleep" "build_grants_live" {
  create_duration = "${var.iam_propagation_seconds}s"

  depends_on = [
    google_project_iam_member.build_writes_logs,
    google_project_iam_member.build_uses_staged_source,
    google_storage_bucket_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.eventarc_agent,
    google_secret_manager_secret_iam_member.runtime_reads,
    google_pubsub_topic_iam_member.webhook_publishes,
    google_pubsub_topic_iam_member.events_publishes_dead_letters,
    google_project_iam_member.webhook_remembers_deliveries,
    google_service_account_iam_member.deployer_acts_as,
  ]
}

# Invoker grants go on the Cloud Run service behind each gen2 function.
resource "google_cloud_run_service_iam_member" "webhook_public" {
  #checkov:skip=CKV_GCP_102:The webhooks must be reachable by third-party systems; the code authenticates every request and a precondition forbids auth none while public.
  for_each = toset(module.senders.public)
  location = var.region
  service  = google_cloudfunctions2_function.link[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Before senders: one public webhook, counted.
moved {
  from = google_cloud_run_service_iam_member.webhook_public[0]
  to   = google_cloud_run_service_iam_member.webhook_public["webhook"]
}

# A private sender (public = false): only the principals named may call its webhook.
resource "google_cloud_run_service_iam_member" "webhook_invokers" {
  for_each = module.senders.invoker_grants
  location = var.region
  service  = google_cloudfunctions2_function.link[each.value.sender].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

resource "google_cloud_run_service_iam_member" "events_invoker" {
  location = var.region
  service  = google_cloudfunctions2_function.link["events"].name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# A push subscription delivers at once. Before the invoker grant is live every delivery is
# refused with 403 and counts as an attempt: five attempts at 10 s backoff reach the dead-letter
# topic in minutes, and a smoke test fires the alert. The subscription waits for the grant.
resource "time_sleep" "invoker_grant_live" {
  create_duration = "${var.iam_propagation_seconds}s"

  depends_on = [
    google_cloud_run_service_iam_member.events_invoker,
    google_service_account_iam_member.pubsub_agent_signs_pushes,
  ]
}

# Pub/Sub makes the push's OIDC token as the invoker. Its service agent does that with a role of
# its own since 8 April 2021; an agent made before then needs this grant, on this account only,
# or every push fails (and ends dead-lettered).
resource "google_service_account_iam_member" "pubsub_agent_signs_pushes" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_project_service_identity.pubsub.member
}

# Queue mode: each sender's account publishes to the requests topic, and to nothing else.
resource "google_pubsub_topic_iam_member" "webhook_publishes" {
  for_each = toset(module.senders.publishers)
  topic    = google_pubsub_topic.requests.name
  role     = "roles/pubsub.publisher"
  member   = google_service_account.runtime[each.key].member
}

moved {
  from = google_pubsub_topic_iam_member.webhook_publishes[0]
  to   = google_pubsub_topic_iam_member.webhook_publishes["webhook"]
}

# The events function dead-letters a message that needs a person itself (DEAD_LETTER_TOPIC), at
# its first delivery: it publishes to the dead-letter topic, and to no other.
resource "google_pubsub_topic_iam_member" "events_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.runtime["events"].member
}

# Pub/Sub's own service agent moves undeliverable messages to the dead-letter topic: it must
# publish there and acknowledge them on the source subscription.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = google_project_service_identity.pubsub.member
}

resource "google_pubsub_subscription_iam_member" "agent_acks_dead_letters" {
  count        = var.use_eventarc_trigger ? 0 : 1
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = google_project_service_identity.pubsub.member
}
