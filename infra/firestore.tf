resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.apis]
}

resource "google_firebaserules_ruleset" "firestore" {
  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }
  depends_on = [google_firestore_database.default]
}

resource "google_firebaserules_release" "firestore" {
  name         = "cloud.firestore"
  ruleset_name = google_firebaserules_ruleset.firestore.name

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}

locals {
  # The one list of indexes: infra/firestore.indexes.json (also what the emulators load).
  firestore_indexes_doc = jsondecode(file("${path.module}/firestore.indexes.json"))
  firestore_indexes = {
    for ix in local.firestore_indexes_doc.indexes :
    join("-", concat([ix.collectionGroup], [for f in ix.fields : f.fieldPath])) => ix
  }
  firestore_field_overrides = {
    for fo in try(local.firestore_indexes_doc.fieldOverrides, []) : "${fo.collectionGroup}-${fo.fieldPath}" => fo
  }
}

resource "google_firestore_index" "composite" {
  for_each    = local.firestore_indexes
  database    = google_firestore_database.default.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

resource "google_firestore_field" "overrides" {
  for_each   = local.firestore_field_overrides
  database   = google_firestore_database.default.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  # An empty index_config: the field is not indexed (large, write-only data).
  index_config {}
}

# TTL policies: the collections whose documents carry an expiry timestamp field.
variable "firestore_ttl" {
  description = "TTL policies: collection group => timestamp field after which Firestore deletes the document."
  type        = map(string)
  default     = {}
}

resource "google_firestore_field" "ttl" {
  for_each   = var.firestore_ttl
  database   = google_firestore_database.default.name
  collection = each.key
  field      = each.value

  ttl_config {}
  index_config {}
}
