// Types of jobstore's Node client and worker kit (the code is plain ES modules with JSDoc).

export type JobStatus = 'pending' | 'scheduled' | 'running' | 'pending_hitl' | 'completed' | 'failed' | 'cancelled';

export interface JobError { code: string; message: string }

export interface Hitl {
  request_id: string;
  type: string;
  prompt: unknown;
  key?: string | null;
  requested_at: string;
  expires_at?: string | null;
  response?: unknown;
  responded_at?: string | null;
  responded_by?: string | null;
}

export interface Job {
  job_id: string;
  type: string;
  status: JobStatus;
  version: number;
  user_id?: string | null;
  description?: string | null;
  input?: unknown;
  data?: Record<string, unknown>;
  labels?: Record<string, string>;
  progress?: Record<string, unknown> | null;
  hitl?: Hitl | null;
  result?: unknown;
  error?: JobError | null;
  errors?: JobError[];
  worker?: string | null;
  lease_expires_at?: string | null;
  attempt?: number;
  max_attempts?: number;
  created_at?: string;
  updated_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  ttl_seconds?: number | null;
  priority?: number;
  run_at?: string | null;
  retry?: RetryPolicy | null;
}

export interface Event {
  seq: number;
  job_id: string;
  version: number;
  type: string;
  at?: string;
  data?: Record<string, unknown>;
}

export interface FeedPage { events: Event[]; next_after: number; head: number; first: number }

export interface StreamEvent { seq: number; type: string; data: Event }

export interface Schedule {
  schedule_id: string;
  cron: string;
  timezone?: string;
  job?: Record<string, unknown>;
  paused?: boolean;
  version: number;
  next_run_at?: string | null;
  last_run_at?: string | null;
  last_job_id?: string | null;
}

export interface RetryPolicy {
  max_attempts?: number;
  backoff?: 'exponential' | 'fixed';
  initial_seconds?: number;
  max_seconds?: number;
  jitter?: number;
}

export interface ClientOptions {
  token?: string;
  userId?: string;
  /** Seconds a call that does not long-poll may take (a long-poll's wait is added). */
  timeout?: number;
  /** Seconds a retryable failure is retried before the call throws. */
  retryFor?: number;
  /** The first retry's pause in seconds, doubled each time up to 5. */
  backoff?: number;
}

export interface CreateOptions {
  description?: string;
  input?: unknown;
  labels?: Record<string, string>;
  userId?: string;
  ttlSeconds?: number;
  maxAttempts?: number;
  jobId?: string;
  idempotencyKey?: string;
  priority?: number;
  runAt?: string;
  delaySeconds?: number;
  retry?: RetryPolicy;
}

/** A created job's id and version, from an answer with Prefer: return=minimal. */
export interface JobRef { job_id: string; version: number }

export interface ClaimOptions { types?: string[]; leaseSeconds?: number; ifMatch?: number }
/** One finished job of JobstoreClient.finish: exactly one of complete or fail. */
export type FinishEntry = { jobId: string; ifMatch?: number } & (
  | { complete: { result?: unknown }; fail?: undefined }
  | { fail: { error: string | JobError; retryable?: boolean }; complete?: undefined });
/** Its result: status 200 with the new version (and the job, unless minimal), or the refusal. */
export interface FinishResult { job_id: string; status: number; version?: number; job?: Job;
  error?: { code: string; message: string } }

export declare class JobstoreClient {
  constructor(baseUrl?: string, options?: ClientOptions);
  readonly baseUrl: string;
  /** Closes the pooled connections (idle ones close by themselves after 4 s). */
  close(): void;
  request(method: string, path: string, opts?: {
    body?: unknown; query?: Record<string, unknown>; headers?: Record<string, string | undefined>;
    safe?: boolean; wait?: number; signal?: AbortSignal;
  }): Promise<{ status: number; body: any; headers: Headers }>;
  create(type?: string, options?: CreateOptions): Promise<Job>;
  createBatch(jobs: Array<Record<string, unknown>>, options?: { minimal?: false }): Promise<Job[]>;
  /** minimal: the answer lists each job's id and version only (Prefer: return=minimal). */
  createBatch(jobs: Array<Record<string, unknown>>, options: { minimal: true }): Promise<JobRef[]>;
  get(jobId: string, options?: { wait?: number; afterVersion?: number; signal?: AbortSignal }): Promise<Job>;
  list(filters?: { status?: JobStatus | JobStatus[]; type?: string; userId?: string;
    labels?: Record<string, string>; pageSize?: number }): AsyncGenerator<Job, void, undefined>;
  update(jobId: string, patch?: { progress?: Record<string, unknown>; data?: Record<string, unknown>;
    labels?: Record<string, string | null>; priority?: number; ifMatch?: number }): Promise<Job>;
  start(jobId: string, options?: { worker?: string; leaseSeconds?: number; ifMatch?: number }): Promise<Job>;
  heartbeat(jobId: string, options?: { leaseSeconds?: number; progress?: Record<string, unknown>; ifMatch?: number }): Promise<Job>;
  claim(worker: string, options?: { types?: string[]; leaseSeconds?: number; wait?: number; signal?: AbortSignal }): Promise<Job | null>;
  /** Up to maxJobs (1-100) jobs in claim order, in one write; [] when none (after wait seconds). */
  claimMany(worker: string, options?: { maxJobs?: number; types?: string[]; leaseSeconds?: number; wait?: number; signal?: AbortSignal }): Promise<Job[]>;
  complete(jobId: string, result?: unknown, options?: { ifMatch?: number }): Promise<Job>;
  completeAndClaim(jobId: string, result: unknown, worker: string, options?: ClaimOptions): Promise<[Job, Job | null]>;
  fail(jobId: string, error: string | JobError, options?: { retryable?: boolean; ifMatch?: number }): Promise<Job>;
  failAndClaim(jobId: string, error: string | JobError, worker: string,
    options?: ClaimOptions & { retryable?: boolean }): Promise<[Job, Job | null]>;
  /** Several jobs' finishes, each on its own, and the next claim, in one durable write. */
  finish(entries: FinishEntry[], options?: { next?: { worker: string; types?: string[]; leaseSeconds?: number; maxJobs?: number };
    minimal?: boolean }): Promise<{ results: FinishResult[]; next: Job[] }>;
  retry(jobId: string, options?: { ifMatch?: number }): Promise<Job>;
  cancel(jobId: string, reason?: string, options?: { ifMatch?: number }): Promise<Job>;
  events(jobId: string): Promise<Event[]>;
  requestHitl(jobId: string, type: string, prompt: unknown, options?: { timeout?: number; key?: string }): Promise<Job>;
  respondHitl(jobId: string, requestId: string, response: unknown): Promise<Job>;
  waitForHitlResponse(jobId: string, options?: { timeout?: number; signal?: AbortSignal }): Promise<unknown>;
  feed(after?: number, options?: { limit?: number; wait?: number; type?: string; jobId?: string; signal?: AbortSignal }): Promise<FeedPage>;
  follow(after?: number, options?: { type?: string; jobId?: string; wait?: number; signal?: AbortSignal }): AsyncGenerator<Event, never, undefined>;
  stream(options?: { after?: number; jobId?: string; signal?: AbortSignal }): AsyncGenerator<StreamEvent, void, undefined>;
  createSchedule(scheduleId: string, cron: string, options?: { timezone?: string; job?: Record<string, unknown>; paused?: boolean }): Promise<Schedule>;
  getSchedule(scheduleId: string): Promise<Schedule>;
  listSchedules(): Promise<Schedule[]>;
  updateSchedule(scheduleId: string, options?: { cron?: string; timezone?: string; job?: Record<string, unknown>; paused?: boolean; ifMatch?: number }): Promise<Schedule>;
  deleteSchedule(scheduleId: string, options?: { ifMatch?: number }): Promise<void>;
  stats(): Promise<Record<string, unknown>>;
  healthy(): Promise<boolean>;
}

export declare class JobContext {
  readonly job: Job;
  readonly jobId: string;
  readonly input: unknown;
  /** Aborts when the worker stops. */
  readonly signal: AbortSignal;
  progress(progress?: { percent?: number; phase?: string; message?: string }): Promise<void>;
  update(patch?: { data?: Record<string, unknown>; labels?: Record<string, string | null> }): Promise<void>;
  ask(type: string, prompt: unknown, options?: { timeout?: number; key?: string }): Promise<unknown>;
}

export interface WorkerOptions {
  concurrency?: number;
  leaseSeconds?: number;
  name?: string;
  /** Seconds a claim long-polls (0.1..2): how soon a stop is noticed. */
  pollSeconds?: number;
  /** Seconds the jobs in hand get after a stop. */
  shutdownGrace?: number;
  /** Stop on SIGINT/SIGTERM; a second signal exits at once. */
  handleSignals?: boolean;
}

export declare class Worker {
  constructor(client: JobstoreClient, types: string[] | null, handler: (ctx: JobContext) => unknown, options?: WorkerOptions);
  readonly completed: number;
  readonly failed: number;
  readonly stopping: boolean;
  run(): Promise<void>;
  stop(): void;
}

export declare class PermanentFailure extends Error {}
export declare class WorkerStopping extends Error {}

export declare class JobstoreError extends Error {
  constructor(message: string, info?: { status?: number; code?: string; body?: unknown });
  readonly status: number;
  readonly code: string;
  readonly body: Record<string, any>;
}
export declare class InvalidArgument extends JobstoreError {}
export declare class Unauthenticated extends JobstoreError {}
export declare class Forbidden extends JobstoreError {}
export declare class NotFound extends JobstoreError {}
export declare class InvalidTransition extends JobstoreError {}
export declare class AlreadyExists extends JobstoreError {}
export declare class VersionMismatch extends JobstoreError {}
export declare class Truncated extends JobstoreError {}
export declare class PayloadTooLarge extends JobstoreError {}
export declare class IdempotencyKeyReused extends JobstoreError {}
export declare class Unavailable extends JobstoreError {}
export declare class BadGateway extends JobstoreError {}
export declare class GatewayTimeout extends JobstoreError {}
export declare class ConnectionFailed extends JobstoreError {}
export declare class HitlTimeout extends JobstoreError {}
export declare function errorFromResponse(status: number, body: unknown, text: string): JobstoreError;
/** The error a refused FinishResult stands for (the class its own complete or fail would throw). */
export declare function finishError(result: FinishResult): JobstoreError;
