output "project_id" {
  description = "The project everything is in (for gcloud --project)."
  value       = var.project_id
}

output "webhook_url" {
  description = "Where third-party systems POST link requests."
  value       = google_cloudfunctions2_function.link["webhook"].service_config[0].uri
}

output "events_url" {
  description = "The private events function (reachable only through the topic)."
  value       = google_cloudfunctions2_function.link["events"].service_config[0].uri
}

output "function_names" {
  description = "The two functions (and their Cloud Run services), by role: webhook and events."
  value       = { for key, function in google_cloudfunctions2_function.link : key => function.name }
}

output "requests_topic" {
  description = "Publish link requests here (full name, as gcloud takes it)."
  value       = google_pubsub_topic.requests.id
}

output "dead_letter_topic" {
  description = "Where requests go after max_delivery_attempts failed deliveries."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Holds dead letters for 7 days: pull them from here to inspect or replay."
  value       = google_pubsub_subscription.dead_letter.id
}

output "dashboard_url" {
  description = "The Cloud Monitoring dashboard: links by outcome and errorCode, Tulip latency, the queue, the dead letters, instances and latency of each function."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${element(split("/", google_monitoring_dashboard.overview.id), 3)}?project=${var.project_id}"
}

output "service_accounts" {
  description = "The service accounts: each function's runtime account, the build's and the push invoker's."
  value = {
    webhook = google_service_account.runtime["webhook"].email
    events  = google_service_account.runtime["events"].email
    build   = google_service_account.build.email
    invoker = google_service_account.invoker.email
  }
}

output "tulip_token_secret" {
  description = "Add the Tulip API token as a version of this secret."
  value       = google_secret_manager_secret.this["tulip_token"].id
}

output "webhook_secret" {
  description = "Add the webhook signing secret (or token) as a version of this secret."
  value       = google_secret_manager_secret.this["webhook_secret"].id
}
