"""Parse every TrainTicket file into one pickle (spans deduplicated) for the study scripts."""
import gzip, json, os, pickle
from pathlib import Path
D=str(Path(__file__).resolve().parents[3]/'shared'/'datasets'/'trainticket')+'/'
PKL=os.environ.get('TT_STUDY_PKL', '/tmp/aiops-tt-study.pkl')
def load(fn):
    rows=[]
    with gzip.open(D+fn,'rt') as f:
        for line in f:
            r=json.loads(line)
            for rs in r.get('resourceSpans',[]):
                svc=None;pod=None
                for a in rs['resource']['attributes']:
                    if a['key']=='service.name': svc=a['value'].get('stringValue')
                    if a['key']=='k8s.pod.name': pod=a['value'].get('stringValue')
                for ss in rs.get('scopeSpans',[]):
                    for s in ss.get('spans',[]):
                        rows.append(dict(svc=svc,pod=pod,tid=s['traceId'],sid=s['spanId'],pid=s.get('parentSpanId',''),name=s['name'],kind=s.get('kind',0),st=int(s['startTimeUnixNano']),et=int(s['endTimeUnixNano'])))
    seen=set(); unique=[]
    for r in rows:  # the data repeats some spans (same trace and span id): keep the first
        if (r['tid'],r['sid']) not in seen: seen.add((r['tid'],r['sid'])); unique.append(r)
    return unique
if __name__=='__main__':
    cases=json.load(open(D+'cases.json'))
    files=[cases['normal_traffic']]+[c['file'] for c in cases['cases']]
    data={fn:load(fn) for fn in files}
    pickle.dump(data,open(PKL,'wb'))
    for fn in files: print(fn,len(data[fn]))
