#!/usr/bin/env python3
"""Adds the issue-14 grant types to schemas/graph-subset.json from Microsoft Graph's CSDL.

Usage: graph_subset_grants.py CLEAN_METADATA_XML [SCHEMA_JSON]

CLEAN_METADATA_XML is `clean_v10_metadata/cleanMetadata.xml` of microsoftgraph/msgraph-metadata
(commit named in SOURCE_COMMIT below). The script maps the named types with the same rules as the
existing entries of graph-subset.json (Microsoft.OpenApi.OData's Edm mapping, OpenAPI 3.1 nulls;
navigation properties are markers, not expanded; `strict.*` variants are flattened, reject
unknown property names and allow `extension_<appid>_*` and `*@odata.*` annotations), adds the
`$ref` body (`ReferenceCreate`, as Microsoft.OpenApi.OData emits it for `.../$ref` operations and
as msgraph-sdk's `reference_create.py` models it) and the paths Guestlist calls. It is
idempotent: running it again rewrites the same entries.
"""
import json
import sys
import xml.etree.ElementTree as ET

SOURCE_COMMIT = "84c1cb513c0b32cd1d9373d79ad4b6ffae991c42"
NS = {"e": "http://docs.oasis-open.org/odata/ns/edm"}
ENTITIES = ["appRoleAssignment", "group"]
COMPLEX = ["assignedLabel", "licenseProcessingState"]
ENUMS = ["groupAccessType"]
DT = "^[0-9]{4,}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,12})?(Z|[+-][0-9][0-9]:[0-9][0-9])$"
UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
STRICT_PATTERNS = {
    "^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$": {},
    "^[A-Za-z0-9_]*@odata\\.[A-Za-z]+$": {},
}


def ref(name, strict):
    return {"$ref": f"#/components/schemas/{'strict.' if strict else ''}microsoft.graph.{name}"}


def prim(edm, nullable):
    t = {
        "Edm.String": {"type": "string"},
        "Edm.Boolean": {"type": "boolean"},
        "Edm.Guid": {"type": "string", "format": "uuid", "pattern": UUID},
        "Edm.DateTimeOffset": {"type": "string", "format": "date-time", "pattern": DT},
        "Edm.Int32": {"type": "integer", "format": "int32", "maximum": 2147483647, "minimum": -2147483648},
    }[edm]
    t = dict(t)
    if nullable:
        t["type"] = [t["type"], "null"]
    return t


def prop_schema(p, kinds, strict):
    ty = p.get("Type")
    nullable = p.get("Nullable", "true") != "false"
    coll = ty.startswith("Collection(")
    inner = ty[len("Collection("):-1] if coll else ty
    if inner.startswith("Edm."):
        item = prim(inner, nullable and not coll)
    else:
        name = inner.split(".", 1)[1]
        kind = kinds[name]
        if kind == "enum":
            item = ref(name, False)
        else:
            item = ref(name, strict)
        if not coll and nullable and not (strict and kind != "enum"):
            item = {"anyOf": [item, {"type": "null"}]}
    return {"type": "array", "items": item} if coll else item


def nav_schema(n):
    ty = n.get("Type")
    coll = ty.startswith("Collection(")
    target = (ty[len("Collection("):-1] if coll else ty).replace("graph.", "microsoft.graph.")
    return {
        "x-ms-navigationProperty": True,
        "x-ms-target": target,
        "description": f"navigation property ({'collection' if coll else 'single'}); target schema not included in this subset",
    }


def main():
    xml_path = sys.argv[1]
    out_path = sys.argv[2] if len(sys.argv) > 2 else "schemas/graph-subset.json"
    root = ET.parse(xml_path).getroot()
    schema = root.find(".//e:Schema[@Namespace='microsoft.graph']", NS)
    doc = json.load(open(out_path))
    schemas = doc["components"]["schemas"]
    # Types already in the subset keep their kind even when the CSDL given is an excerpt.
    kinds = {
        k.split("microsoft.graph.", 1)[1]: ("enum" if "enum" in v else "complex")
        for k, v in schemas.items()
        if k.startswith("microsoft.graph.") and not k.startswith("microsoft.graph.ODataErrors")
    }
    for el in schema:
        tag = el.tag.split("}")[1]
        kinds[el.get("Name")] = {"EnumType": "enum", "ComplexType": "complex", "EntityType": "entity"}.get(tag)

    def find(tag, name):
        el = schema.find(f"e:{tag}[@Name='{name}']", NS)
        if el is None:
            sys.exit(f"{tag} {name} not found in {xml_path}")
        return el

    for name in ENUMS:
        el = find("EnumType", name)
        schemas[f"microsoft.graph.{name}"] = {
            "title": name,
            "type": "string",
            "enum": [m.get("Name") for m in el.findall("e:Member", NS)],
        }
    for name in COMPLEX:
        el = find("ComplexType", name)
        for strict in (False, True):
            props = {p.get("Name"): prop_schema(p, kinds, strict) for p in el.findall("e:Property", NS)}
            props["@odata.type"] = {"type": "string"}
            s = {"title": name, "type": ["object", "null"] if strict else "object", "properties": props}
            if strict:
                s["patternProperties"] = STRICT_PATTERNS
                s["additionalProperties"] = False
            schemas[("strict." if strict else "") + f"microsoft.graph.{name}"] = s
    for name in ENTITIES:
        el = find("EntityType", name)
        base = el.get("BaseType").replace("graph.", "microsoft.graph.")
        open_type = el.get("OpenType") == "true"
        props = {p.get("Name"): prop_schema(p, kinds, False) for p in el.findall("e:Property", NS)}
        for n in el.findall("e:NavigationProperty", NS):
            props[n.get("Name")] = nav_schema(n)
        props["@odata.type"] = {"type": "string"}
        own = {"title": name, "type": "object", "properties": props}
        if open_type:
            own["x-ms-open-type"] = True
        schemas[f"microsoft.graph.{name}"] = {"allOf": [{"$ref": f"#/components/schemas/{base}"}, own]}
        sprops = {p.get("Name"): prop_schema(p, kinds, True) for p in el.findall("e:Property", NS)}
        for n in el.findall("e:NavigationProperty", NS):
            sprops[n.get("Name")] = nav_schema(n)
        sprops["@odata.type"] = {"type": "string"}
        # Flatten the base chain (directoryObject → entity) as the strict user does.
        for k, v in schemas[f"strict.{base}"]["properties"].items():
            sprops.setdefault(k, v)
        strict = {"title": name, "type": ["object", "null"], "properties": sprops}
        if open_type:
            strict["x-ms-open-type"] = True
        strict["patternProperties"] = STRICT_PATTERNS
        strict["additionalProperties"] = False
        schemas[f"strict.microsoft.graph.{name}"] = strict

    schemas["ReferenceCreate"] = {
        "type": "object",
        "properties": {"@odata.id": {"type": "string"}},
        "additionalProperties": {"type": "object"},
        "x-source": "Microsoft.OpenApi.OData's schema for the body of POST .../{navigation}/$ref (msgraph-sdk models/reference_create.py: one property, @odata.id)",
    }
    schemas["strict.ReferenceCreate"] = {
        "type": "object",
        "required": ["@odata.id"],
        "properties": {
            "@odata.id": {
                "type": "string",
                "pattern": "^https://graph\\.microsoft\\.com/v1\\.0/(directoryObjects|users|groups|servicePrincipals)/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                "description": "the read URL of one directory object: https://graph.microsoft.com/v1.0/directoryObjects/{id} (the \"Add members\" example; Guestlist sends this form) or .../users/{id}, .../groups/{id} (the \"Add sponsor\" examples)",
            }
        },
        "additionalProperties": False,
        "x-source": "ReferenceCreate restricted to one directory object's read URL by GUID (docs: group-post-members, user-post-sponsors)",
    }

    err = {"4XX": {"$ref": "#/components/responses/error"}, "5XX": {"$ref": "#/components/responses/error"}}
    ref_body = {
        "required": True,
        "description": "New navigation property ref value",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReferenceCreate"}}},
    }
    no_content = {"2XX": {"description": "Success"}, **err}
    collection = lambda title, item: {
        "2XX": {
            "description": "Retrieved collection",
            "content": {"application/json": {"schema": {
                "title": f"Collection of {title}",
                "type": "object",
                "properties": {
                    "value": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                    "@odata.nextLink": {"type": ["string", "null"]},
                },
            }}},
        },
        **err,
    }
    assignment_post = lambda op, summary: {
        "summary": summary,
        "operationId": op,
        "requestBody": {"required": True, "description": "New navigation property",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/microsoft.graph.appRoleAssignment"}}}},
        "x-strict-requestBody": {"$ref": "#/components/schemas/strict.microsoft.graph.appRoleAssignment"},
        "responses": {"2XX": {"description": "Created navigation property.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/microsoft.graph.appRoleAssignment"}}}}, **err},
    }
    paths = doc["paths"]
    paths["/groups/{group-id}"] = {"get": {
        "summary": "Get group", "operationId": "groups.group.GetGroup",
        "responses": {"2XX": {"description": "Retrieved entity", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/microsoft.graph.group"}}}}, **err},
    }}
    paths["/groups/{group-id}/members"] = {"get": {
        "summary": "List group members", "operationId": "groups.ListMembers",
        "responses": collection("microsoft.graph.directoryObject", "microsoft.graph.directoryObject"),
    }}
    paths["/groups/{group-id}/members/$ref"] = {"post": {
        "summary": "Add members", "operationId": "groups.members.CreateRefMembers",
        "requestBody": ref_body,
        "x-strict-requestBody": {"$ref": "#/components/schemas/strict.ReferenceCreate"},
        "responses": no_content,
    }}
    paths["/users/{user-id}/appRoleAssignments"] = {
        "get": {"summary": "List appRoleAssignments granted to a user", "operationId": "users.ListAppRoleAssignments",
                "responses": collection("appRoleAssignment", "microsoft.graph.appRoleAssignment")},
        "post": assignment_post("users.CreateAppRoleAssignments", "Grant an appRoleAssignment to a user"),
    }
    paths["/servicePrincipals/{servicePrincipal-id}/appRoleAssignedTo"] = {
        "get": {"summary": "List appRoleAssignments granted for a service principal", "operationId": "servicePrincipals.ListAppRoleAssignedTo",
                "responses": collection("appRoleAssignment", "microsoft.graph.appRoleAssignment")},
        "post": assignment_post("servicePrincipals.CreateAppRoleAssignedTo", "Grant an appRoleAssignment for a service principal"),
    }
    paths["/users/{user-id}/sponsors"] = {"get": {
        "summary": "List sponsors", "operationId": "users.ListSponsors",
        "responses": collection("microsoft.graph.directoryObject", "microsoft.graph.directoryObject"),
    }}
    paths["/users/{user-id}/sponsors/$ref"] = {"post": {
        "summary": "Add sponsor", "operationId": "users.sponsors.CreateRefSponsors",
        "requestBody": ref_body,
        "x-strict-requestBody": {"$ref": "#/components/schemas/strict.ReferenceCreate"},
        "responses": no_content,
    }}

    info = doc["info"]
    info["title"] = "Microsoft Graph v1.0 subset (users, invitations, groups, app role assignments, sponsors, $batch, ODataErrors)"
    src = info["x-source"]
    for t in ENTITIES + COMPLEX + ENUMS:
        if t not in src["included_types"]:
            src["included_types"].append(t)
    src["included_types"].sort(key=str.lower)
    src["grants"] = {
        "added_by": "schemas/tools/graph_subset_grants.py (issue 14)",
        "repository": "microsoftgraph/msgraph-metadata",
        "commit": SOURCE_COMMIT,
        "file": "clean_v10_metadata/cleanMetadata.xml",
        "types": ENTITIES + COMPLEX + ENUMS,
        "reference_body": "ReferenceCreate: Microsoft.OpenApi.OData's $ref request body; cross-checked with PyPI msgraph-sdk 1.65.0 msgraph/generated/models/reference_create.py and app_role_assignment.py",
        "paths": "from the v1.0 docs pages 'Add members', 'List group members', 'Get group', 'Grant an appRoleAssignment to a user', 'Grant an appRoleAssignment for a service principal', 'List appRoleAssignments granted to a user', 'Add sponsor', 'List sponsors'",
    }
    with open(out_path, "w") as f:
        # The layout graph-subset.json has always had: one-space indent, no final newline.
        json.dump(doc, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
