// Drives a running Tremplin through one person's whole path with a client generated
// from openapi.yaml (openapi-typescript types + openapi-fetch), as a partner would.
// Run by tests/test_generated_clients.py; exits non-zero on the first unexpected answer.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Schemas = components["schemas"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`missing ${name}`);
  return value;
}

function must<T>(
  answer: { data?: T; error?: unknown; response: Response },
  what: string,
): T {
  if (answer.data === undefined) {
    throw new Error(`${what}: HTTP ${answer.response.status} ${JSON.stringify(answer.error)}`);
  }
  return answer.data;
}

const baseUrl = env("BASE_URL");
const [insertionSiret, landlordSiret] = env("SIRETS").split(",");

// A token: openapi-fetch sends the documented form's fields as JSON, which is accepted.
const anonymous = createClient<paths>({ baseUrl });
const token = must(
  await anonymous.POST("/v1/oauth/token", {
    body: {
      grant_type: "client_credentials",
      client_id: env("CLIENT_ID"),
      client_secret: env("CLIENT_SECRET"),
    },
  }),
  "token",
);
const api = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${token.access_token}` },
});

const place = { postcode: "76000", commune_insee: "76540" };
const siae = must(
  await api.POST("/v1/structures", {
    body: { kind: "insertion", sub_kind: "AI", name: "SIAE (fictional)", siret: insertionSiret!, ...place },
  }),
  "insertion structure",
);
const landlord = must(
  await api.POST("/v1/structures", {
    body: { kind: "landlord", sub_kind: "OPH", name: "OPH (fictional)", siret: landlordSiret!, ...place },
  }),
  "landlord",
);
const person = must(
  await api.POST("/v1/candidates", {
    body: {
      first_name: "Camille",
      last_name: "Exemple",
      birth_date: "1990-04-12",
      structure_id: siae.id,
      consent_to_share: true,
      // The path began before the activities recorded below.
      entered_at: "2026-05-01T00:00:00Z",
      external_ref: "TS-0001",
      ...place,
    },
  }),
  "candidate",
);
const candidate_id = person.id;

type ActivityBody =
  | Schemas["WorkTrialCreate"]
  | Schemas["ProjectEvaluationCreate"]
  | Schemas["TrainingCreate"]
  | Schemas["SkillsAssessmentCreate"]
  | Schemas["WorkMissionCreate"];

async function record(body: ActivityBody): Promise<void> {
  must(
    await api.POST("/v1/candidates/{candidate_id}/activities", {
      params: { path: { candidate_id } },
      body,
    }),
    `activity ${body.type}`,
  );
}

async function move(to: Schemas["Phase"]): Promise<void> {
  must(
    await api.POST("/v1/candidates/{candidate_id}/transitions", {
      params: { path: { candidate_id } },
      body: { to },
    }),
    `transition to ${to}`,
  );
}

await record({ type: "work_trial", occurred_on: "2026-06-01", outcome: "positive" });
await record({ type: "project_evaluation", occurred_on: "2026-06-15", outcome: "positive" });
await move("support");
await record({
  type: "training",
  occurred_on: "2026-07-01",
  hours: 160,
  training_mode: "external",
  certifying: true,
  rncp_code: "RNCP40892",
});
await record({
  type: "skills_assessment",
  occurred_on: "2026-08-01",
  outcome: "positive",
  competency_levels: { cleaning_hygiene: 2, tenant_welcome: 2 },
});
await record({
  type: "work_mission",
  occurred_on: "2026-08-10",
  outcome: "positive",
  landlord_id: landlord.id,
});
await move("securing");

const vacancy = must(
  await api.POST("/v1/vacancies", {
    body: {
      landlord_id: landlord.id,
      title: "Gardien d'immeuble (fictional)",
      kind: "job",
      contract_type: "cdi",
      start_date: "2027-01-04",
      status: "open",
      ...place,
    },
  }),
  "vacancy",
);
const placement = must(
  await api.POST("/v1/placements", { body: { candidate_id, vacancy_id: vacancy.id } }),
  "placement",
);
for (const to of ["accepted", "started"] as const) {
  must(
    await api.POST("/v1/placements/{placement_id}/transitions", {
      params: { path: { placement_id: placement.id } },
      body: { to },
    }),
    `placement ${to}`,
  );
}

const history = must(
  await api.GET("/v1/candidates/{candidate_id}/history", {
    params: { path: { candidate_id }, query: { limit: 50 } },
  }),
  "history",
);
const phases = history.items.map((t) => t.to_phase);
// The entry into the path first, then each move.
if (phases.join(",") !== "recruitment,support,securing,employed") {
  throw new Error(`unexpected history: ${phases.join(",")}`);
}

// The change feed, typed by event: narrowing on `type` gives each payload its shape.
const feed = must(
  await api.GET("/v1/events", { params: { query: { types: ["candidate.phase_changed"] } } }),
  "events",
);
const reached = feed.items.flatMap((event) =>
  event.type === "candidate.phase_changed" ? [event.data.to] : [],
);
if (reached.at(-1) !== "employed") throw new Error(`unexpected feed: ${reached.join(",")}`);

console.log(`typescript client: path complete, ${person.id} ${phases.at(-1)}`);
